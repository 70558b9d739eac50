"""Import jobs: queued for the worker after the commit, read back only by who uploaded them."""

import pytest

from crm import after_commit, import_jobs
from crm.actors import Actor
from crm.errors import NotFound
from models.imports import ImportStatus
from tests.factories import make_company


def queue(session, user, clock):
    return import_jobs.queue_import(
        session,
        actor=Actor.of(user),
        filename="客户名单.xlsx",
        storage_key="ab/cdef.xlsx",
        on_duplicate="skip",
        now=clock(),
    )


def test_a_queued_import_starts_its_job_once_committed(session, clock):
    company = make_company(session)

    job = queue(session, company.reps[0][0], clock)

    assert job.status == ImportStatus.QUEUED and job.report == []
    assert after_commit.take(session) == {(after_commit.IMPORT, job.id)}


def test_an_import_is_read_by_its_uploader_and_the_boss_only(session, clock):
    company = make_company(session)
    uploader, teammate = company.reps[0]
    job = queue(session, uploader, clock)

    for reader in (uploader, company.boss):
        found = import_jobs.get_import_job(session, actor=Actor.of(reader), import_id=job.id)
        assert found.id == job.id
    for stranger in (teammate, company.managers[0], company.reps[1][0]):
        with pytest.raises(NotFound):
            import_jobs.get_import_job(session, actor=Actor.of(stranger), import_id=job.id)

"""Card task ids: a subject and a recipient make a task id WeCom accepts, and it reads back."""

import pytest

from wecom import task_ids


def test_a_subject_and_recipient_make_a_task_id_that_reads_back():
    value = task_ids.task_id({"order_id": 7, "step_id": 9}, 3)
    assert value == "order-7-step-9-u3"
    assert task_ids.subject_of(value) == {"order_id": 7, "step_id": 9}


def test_the_task_id_does_not_depend_on_the_order_the_subject_was_stored_in():
    # PostgreSQL's JSONB hands keys back in its own order; a resend must reuse the task id.
    assert task_ids.task_id({"step_id": 9, "order_id": 7}, 3) == "order-7-step-9-u3"


def test_each_recipient_gets_its_own_task_id():
    subject = {"order_id": 7, "step_id": 9}
    assert task_ids.task_id(subject, 3) != task_ids.task_id(subject, 4)


def test_the_longest_subject_fits_wecoms_limit():
    subject = {"a" * 16 + "_id": 2**31 - 1, "b" * 16 + "_id": 2**31 - 1, "c" * 16 + "_id": 0}
    value = task_ids.task_id(subject, 2**31 - 1)
    assert len(value.encode()) <= task_ids.TASK_ID_MAX_BYTES
    assert task_ids.subject_of(value) == subject


@pytest.mark.parametrize(
    "subject", [{}, {"order": 7}, {"Order_id": 7}, {"order_id": -1}, {"order_id": 2**31}]
)
def test_a_subject_that_names_no_ids_is_a_bug(subject):
    with pytest.raises(ValueError):
        task_ids.task_id(subject, 3)


@pytest.mark.parametrize(
    "value", ["", "order-7-step-9", "order-7-step-9-u", "order 7-u3", "ORDER-7-u3", "u3"]
)
def test_a_task_id_that_is_not_ours_names_nothing(value):
    assert task_ids.subject_of(value) is None

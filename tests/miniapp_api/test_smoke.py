from tests.factories import make_company, make_customer, sign_in


def test_rep_lists_own_customers(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    mine = make_customer(session, rep, clock(), phone="13800138000")
    make_customer(session, company.reps[0][1], clock())
    headers = sign_in(client, fake_wecom, rep)
    response = client.get("/api/v1/customers", headers=headers)
    assert response.status_code == 200, response.json
    assert [c["id"] for c in response.json["items"]] == [mine.id]
    detail = client.get(f"/api/v1/customers/{mine.id}", headers=headers)
    assert detail.status_code == 200, detail.json

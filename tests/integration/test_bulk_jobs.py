"""Bulk jobs (issue 13: tags and notes in bulk, master data at the size of a chain): a CSV of members tagged,
untagged or noted, stores and products upserted by code, each row once with its outcome (D-083)."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api


def register(api: Api, phone: str) -> dict:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})
    assert status == 201
    return member


def job(api: Api, path: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    return api.call("POST", path, OPERATOR, body=body, headers={"idempotency-key": key} if key else None)


def rows(api: Api, job_id: str, **query) -> list[dict]:
    status, page = api.call("GET", f"/v1/admin/bulk-jobs/{job_id}/rows", OPERATOR, query=query or None)
    assert status == 200
    return page["items"]


@pytest.fixture
def members(demo, api: Api) -> list[dict]:
    return [register(api, f"1370000000{i}") for i in range(3)]


def test_a_csv_of_phones_and_cards_tags_each_member_once(members, api, pipeline):
    first, second, third = members
    csv = f"phone\n{first['phone']}\n139 9999 9999\n{second['phone']}\n{first['phone']}\n"
    body = {"action": "attachTag", "tagCode": "newcomer", "csv": csv}
    status, created = job(api, "/v1/admin/member-jobs", body, "t-1")
    assert (status, created["total"], created["kind"], created["action"]) == (202, 4, "members", "attachTag")
    assert job(api, "/v1/admin/member-jobs", body, "t-1")[1]["jobId"] == created["jobId"]  # a retry: the same job
    pipeline.drain()
    _, report = api.call("GET", f"/v1/admin/bulk-jobs/{created['jobId']}", OPERATOR)
    assert (report["done"], report["outcomes"]) == (4, {"TAGGED": 2, "UNKNOWN_MEMBER": 1, "UNCHANGED": 1})
    assert [(r["row"], r["outcome"], r.get("memberId")) for r in rows(api, created["jobId"])] == [
        (1, "TAGGED", first["id"]),
        (2, "UNKNOWN_MEMBER", None),
        (3, "TAGGED", second["id"]),
        (4, "UNCHANGED", first["id"]),
    ]
    _, tag = api.call("GET", "/v1/admin/tags/newcomer", OPERATOR)
    assert tag["memberCount"] == 2
    # untagging by card number
    cards = f"cardNo\n{first['cardNo']}\n{third['cardNo']}\n"
    _, untag = job(api, "/v1/admin/member-jobs", {"action": "detachTag", "tagCode": "newcomer", "csv": cards})
    pipeline.drain()
    assert [r["outcome"] for r in rows(api, untag["jobId"])] == ["UNTAGGED", "UNCHANGED"]
    assert api.call("GET", "/v1/admin/tags/newcomer", OPERATOR)[1]["memberCount"] == 1


def test_a_bulk_note_is_written_once_per_row_even_when_a_chunk_is_redelivered(members, api, pipeline):
    from loyalty.services.bulk_jobs import NoteJobRequest, bulk_job_service

    service = bulk_job_service()
    ids = [m["id"] for m in members]
    request = NoteJobRequest(action="addNote", comment="回访: 满意", csv="memberId\n" + "\n".join(ids) + "\n")
    created = service.create_member_job("demo", request, "op-key")
    chunk = [{"row": i + 1, "memberId": member_id} for i, member_id in enumerate(ids)]
    message = {"tenant": "demo", "jobId": created.job_id, "rows": chunk}
    assert service.work(message) == 3
    assert service.work(message) == 0  # redelivered: nothing twice
    pipeline.drain()  # the queued copy of the chunk too
    for member_id in ids:
        notes = api.call("GET", f"/v1/admin/members/{member_id}/notes", OPERATOR)[1]["items"]
        assert [(n["comment"], n["writtenBy"]) for n in notes] == [("回访: 满意", "op-key")]
    assert service.report("demo", created.job_id).outcomes == {"NOTED": 3}


def test_bad_member_uploads_are_refused_whole(demo, api):
    cases = [
        ({"action": "attachTag", "csv": "phone\n1\n"}, "VALIDATION_FAILED"),  # no tag
        ({"action": "addNote", "tagCode": "newcomer", "comment": "x", "csv": "phone\n1\n"}, "VALIDATION_FAILED"),
        ({"action": "attachTag", "tagCode": "nope", "csv": "phone\n13700000000\n"}, "UNKNOWN_TAG"),
        ({"action": "attachTag", "tagCode": "newcomer", "csv": "email\nx@example.com\n"}, "CSV_HEADER"),
        ({"action": "attachTag", "tagCode": "newcomer", "csv": "phone\n"}, "CSV_EMPTY"),
        ({"action": "attachTag", "tagCode": "newcomer", "csv": "cardNo\n100000000001\n"}, "CSV_ROW"),
    ]
    for body, code in cases:
        status, problem = job(api, "/v1/admin/member-jobs", body)
        assert (status, problem["code"]) == (422, code), body
    assert api.call("GET", "/v1/admin/bulk-jobs/01HZZZZZZZZZZZZZZZZZZZZZZZ", OPERATOR)[1]["code"] == "JOB_NOT_FOUND"
    assert api.call("POST", "/v1/admin/member-jobs", POS, body=cases[2][0])[0] == 403


def test_ten_thousand_products_upserted_by_code_in_one_job(demo, api, pipeline):
    lines = ["code,name,categoryCode"] + [f"P{i:05d},商品 {i},SNACK" for i in range(10_000)]
    status, created = job(
        api, "/v1/admin/master-data-jobs", {"kind": "product", "format": "csv", "data": "\n".join(lines)}
    )
    assert (status, created["total"], created["action"]) == (202, 10_000, "upsert:product")
    pipeline.drain(rounds=1000)
    _, report = api.call("GET", f"/v1/admin/bulk-jobs/{created['jobId']}", OPERATOR)
    assert (report["done"], report["outcomes"]) == (10_000, {"CREATED": 10_000})
    _, product = api.call("GET", "/v1/admin/products/P09999", OPERATOR)
    assert (product["name"], product["categoryCode"]) == ("商品 9999", "SNACK")
    # the same file again changes nothing; a changed row updates; a bad row is reported, not the file refused
    again = "\n".join([lines[0], lines[1], "P00001,改名,SNACK", "P00002,x,NO_SUCH", "bad code!,x,SNACK"])
    _, second = job(api, "/v1/admin/master-data-jobs", {"kind": "product", "format": "csv", "data": again})
    pipeline.drain()
    outcomes = [(r["outcome"], r.get("code")) for r in rows(api, second["jobId"])]
    assert outcomes[:3] == [("UNCHANGED", "P00000"), ("UPDATED", "P00001"), ("UNKNOWN_REFERENCE", "P00002")]
    assert outcomes[3][0] == "INVALID" and "code" in rows(api, second["jobId"])[3]["detail"]
    assert api.call("GET", "/v1/admin/products/P00001", OPERATOR)[1]["name"] == "改名"
    first_page = rows(api, created["jobId"], limit="2")
    assert [r["row"] for r in first_page] == [1, 2]


def test_stores_from_json_lines(demo, api, pipeline):
    data = "\n".join(
        [
            '{"code": "BJ001", "name": "北京王府井店", "type": "直营", "city": "北京"}',
            '{"code": "BJ002", "name": "北京三里屯店", "status": "closed"}',
        ]
    )
    status, created = job(api, "/v1/admin/master-data-jobs", {"kind": "store", "format": "jsonl", "data": data})
    assert status == 202
    pipeline.drain()
    assert [r["outcome"] for r in rows(api, created["jobId"])] == ["CREATED", "CREATED"]
    assert api.call("GET", "/v1/admin/stores/BJ002", OPERATOR)[1]["status"] == "closed"
    # a line that is no JSON object, one nested 5,000 deep and one with a key twice are their rows' outcomes
    # (issue 25: the deep one answered 500); the good line beside them is done
    hostile = "\n".join(["[1]", "[" * 5000 + "]" * 5000, '{"code": "BJ003", "code": "BJ004", "name": "x"}'])
    good = '{"code": "BJ005", "name": "北京西单店"}'
    body = {"kind": "store", "format": "jsonl", "data": hostile + "\n" + good}
    status, created = job(api, "/v1/admin/master-data-jobs", body)
    assert status == 202, created
    pipeline.drain()
    assert [(r["outcome"], (r.get("detail") or "")[:40]) for r in rows(api, created["jobId"])] == [
        ("INVALID", "line 1 is not a JSON object"),
        ("INVALID", "line 2 is not JSON: nested deeper than 3"),
        ("INVALID", "line 3 is not JSON: the key 'code' is gi"),
        ("CREATED", ""),
    ]
    # a CSV cell over the csv module's 131,072-character limit is a 422 naming the line, not a 500
    data = "code,name\nBJ006," + "x" * 140_000
    status, problem = job(api, "/v1/admin/master-data-jobs", {"kind": "store", "format": "csv", "data": data})
    assert (status, problem["code"], problem["field"]) == (422, "CSV_MALFORMED", "/data") and "line 2" in problem[
        "detail"
    ]

"""Reports as CSV: a BOM for Excel, the glossary's Chinese labels, no formula injection."""

from chalicelib.entrypoints.http.export import csv_response


def test_a_report_csv_has_a_bom_labelled_header_and_one_line_per_row():
    rows = [
        {"department_id": "dept-rsj", "department_name": "青浦区人社局", "on_time_rate": 0.5},
        {"department_id": "dept-zwb", "department_name": "=HYPERLINK(1)", "on_time_rate": None},
    ]
    response = csv_response(rows, ["department_id", "department_name", "on_time_rate"], "r.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.body.split("\r\n")
    assert lines[0] == "\ufeff部门编号,部门名称,按时率"
    assert lines[1] == "dept-rsj,青浦区人社局,0.5"
    assert lines[2] == "dept-zwb,'=HYPERLINK(1),"
    assert lines[3] == ""

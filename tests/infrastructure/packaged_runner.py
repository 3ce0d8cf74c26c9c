"""Runs Lambda handlers from an unpacked package, as the Lambda runtime would: started by
test_packages.py with `python -I -S` (no site-packages, no environment-driven paths), so only
the package and the standard library can be imported. Standard library only, on purpose.

    python -I -S packaged_runner.py <spec.json>

The spec names the package directory, the third-party modules to import, and the handlers to
invoke, each with its sample event. The result is printed as one JSON line.
"""

import importlib
import json
import sys
import traceback


class Context:
    """The attributes of Lambda's context object that the handlers and Powertools read."""

    def __init__(self, function_name, request_id):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "packaged-test"

    def get_remaining_time_in_millis(self):
        return 30_000


def main(spec_path):
    with open(spec_path, encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    sys.path.insert(0, spec["package"])
    result = {
        "sys_path": list(sys.path),
        "imports": {},
        "invocations": {},
    }
    for module in spec["modules"]:
        try:
            loaded = importlib.import_module(module)
            result["imports"][module] = {"ok": True, "file": getattr(loaded, "__file__", None)}
        except BaseException:
            result["imports"][module] = {"ok": False, "error": traceback.format_exc()}
    for index, call in enumerate(spec["invocations"]):
        module_name, _, attribute = call["handler"].rpartition(".")
        try:
            handler = getattr(importlib.import_module(module_name), attribute)
            context = Context(call["function_name"], f"packaged-test-{index}")
            answer = handler(call["event"], context)
            json.dumps(answer)  # Lambda serialises the answer: it must be JSON
            result["invocations"][call["function_name"]] = {"ok": True, "result": answer}
        except BaseException:
            result["invocations"][call["function_name"]] = {
                "ok": False,
                "error": traceback.format_exc(),
            }
    result["loaded_from"] = sorted(
        {
            getattr(module, "__file__", None) or ""
            for module in list(sys.modules.values())
            if getattr(module, "__file__", None)
        }
    )
    print("PACKAGED-RESULT " + json.dumps(result, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main(sys.argv[1])

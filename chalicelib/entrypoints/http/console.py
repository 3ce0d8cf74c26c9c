"""The district office's web console (`/console`): static files shipped in chalicelib/console.

The pages call the public API with the signed-in person's own token; nothing here reads data.
One flat folder, so a file is named by one path segment and nothing outside it can be asked for.
"""

from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.domain.errors import NotFound
from chalicelib.entrypoints.http.routing import Call, api_route

bp = Blueprint(__name__)

FOLDER = Path(__file__).resolve().parents[2] / "console"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_INDEX = "index.html"


def _file(name: str) -> Response:
    path = FOLDER / name
    content_type = _TYPES.get(path.suffix)
    if content_type is None or path.parent != FOLDER or not path.is_file():
        raise NotFound("控制台文件不存在", code="console_file_not_found")
    # The page itself is never cached (it names the scripts); the scripts are revalidated.
    cache = "no-store" if name == _INDEX else "no-cache"
    return Response(
        body=path.read_text(encoding="utf-8"),
        status_code=200,
        headers={
            "Content-Type": content_type,
            "Cache-Control": cache,
            "X-Content-Type-Options": "nosniff",
        },
    )


@api_route(
    bp,
    "/console",
    summary="管理控制台（网页）",
    tags=("console",),
    public=True,
    errors=(NotFound,),
)
def console_page(call: Call):
    return _file(_INDEX)


@api_route(
    bp,
    "/console/{name}",
    summary="管理控制台的页面文件（HTML、脚本、样式）",
    tags=("console",),
    public=True,
    errors=(NotFound,),
)
def console_file(call: Call, name: str):
    return _file(name or _INDEX)

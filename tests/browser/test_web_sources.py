"""The web client's sources, read without a browser: ES modules that all load, DOM built without HTML strings,
HTTP, Cognito and queue code without DOM, and no copies of the limits the server sends in config.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

WEB_DIR = PROJECT_DIR / "web"
MODULES = sorted(WEB_DIR.rglob("*.js"))
_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']""", re.M)


def source(path: Path) -> str:
    # Comments may name what the code avoids ("never innerHTML"); only code counts.
    return re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)


def test_the_client_is_split_into_view_modules() -> None:
    names = {path.relative_to(WEB_DIR).as_posix() for path in MODULES}
    assert {"app.js", "api.js", "auth.js", "dom.js"} <= names
    assert {"views/auth.js", "views/gallery.js", "views/photo.js", "views/profile.js", "views/upload.js"} <= names
    assert {"views/albums.js", "views/album.js", "views/share.js", "views/public.js"} <= names
    assert {"views/timeline.js", "views/trash.js", "views/tiles.js", "views/bulk.js", "views/account.js"} <= names
    assert max(len(path.read_text().splitlines()) for path in MODULES) < 300


def test_every_import_resolves_and_every_module_is_used() -> None:
    """A missing file or a typo in an import breaks the app with nothing but a console error."""
    imported = set()
    for module in MODULES:
        for match in _IMPORT.finditer(module.read_text()):
            specifier = match.group(1) or match.group(2)
            assert specifier.startswith(("./", "../")), (module, specifier)  # no bare (npm) imports: no build step
            target = (module.parent / specifier).resolve()
            assert target.is_file(), f"{module.relative_to(WEB_DIR)} imports a missing {specifier}"
            imported.add(target)
    # Every module but the entry point (index.html's) is imported by another: nothing is left behind by a split.
    assert {path.resolve() for path in MODULES} - imported == {(WEB_DIR / "app.js").resolve()}
    assert '<script type="module" src="app.js">' in (WEB_DIR / "index.html").read_text()


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.relative_to(WEB_DIR).as_posix())
def test_no_module_builds_markup_from_strings(module: Path) -> None:
    code = source(module)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, f"{module.name} uses {sink}: build elements with h()"


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.relative_to(WEB_DIR).as_posix())
def test_no_module_sets_inline_styles_or_handlers(module: Path) -> None:
    """The CSP allows styles and scripts from the SPA's own files only: a `style` or `on…` attribute (set with h()
    or setAttribute) is refused by the browser, so styling goes through classes in styles.css and handlers through
    addEventListener (h()'s `on…` options are listeners)."""
    code = source(module)
    assert not re.search(r"""setAttribute\(\s*["'](style|on\w+)["']""", code), module
    assert not re.search(r"""[{,]\s*["']?style["']?\s*:""", code), module
    assert not re.search(r"\.cssText\b|\bsetTimeout\(\s*[\"'`]", code), module


def test_index_html_has_no_inline_script_style_or_handler() -> None:
    html = (WEB_DIR / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="app.js">']
    assert "<style" not in html
    assert not re.search(r"\s(style|on\w+)\s*=", html)


def test_batches_are_sized_by_the_servers_limits() -> None:
    """POST /photos/batch and the album photo routes take a limited number of ids per call: the client splits a
    selection by config.json's limits (`batch_photos`, `album_photos_per_call`), never by a size of its own."""
    calls = [(module, line) for module in MODULES for line in source(module).splitlines() if "inBatches(" in line]
    senders = [(module.name, line) for module, line in calls if "export async function" not in line]
    assert senders, "nothing sends photos in batches"
    sized = re.compile(r"inBatches\([^,]+,\s*(session\.)?limits\.(batch_photos|album_photos_per_call)\s*,")
    for name, line in senders:
        assert sized.search(line), (name, line)
    api = source(WEB_DIR / "api.js")
    assert '"/photos/batch"' in api
    assert re.search(r"batchPhotos\(action, photoIds", api)


@pytest.mark.parametrize("name", ["api.js", "auth.js", "queue.js"])
def test_http_cognito_and_queue_modules_do_not_touch_the_dom(name: str) -> None:
    code = source(WEB_DIR / name)
    assert not re.search(r"\bdocument\b", code)
    assert "./dom.js" not in code


def test_the_client_keeps_no_copy_of_the_servers_limits() -> None:
    """Lengths, the upload size and the accepted types come from config.json's `limits` (devstack.web.client_limits,
    infra.publish_web). Cognito's own rules (username, code, password) are the user pool's and may stay."""
    for module in MODULES:
        code = source(module)
        assert "image/" not in code, module
        assert not re.search(r"\d\s*(KB|MB|GB)\b", code), module
        if module.name != "auth.js" or module.parent.name != "views":
            assert not re.search(r"""(maxlength|minlength)\s*:\s*["'\d]""", code), module


def test_the_public_album_view_never_uses_the_visitors_own_session() -> None:
    """A share link's page (#/s/<token>) calls only the /public routes, which send no Authorization header: a
    signed-in visitor's token must not reach them, and a signed-out one has none."""
    code = source(WEB_DIR / "views" / "public.js")
    assert not re.search(r"\bauth\b", code)
    assert set(re.findall(r"\bapi\.(\w+)\(", code)) == {"getPublicAlbum", "unlockPublicAlbum"}
    api = source(WEB_DIR / "api.js")
    public = re.search(r"async publicRequest\(.*?\n  }\n", api, re.S)
    assert public is not None
    assert "idToken" not in public.group(0)
    callers = [line for line in api.splitlines() if "this.publicRequest(" in line]
    assert len(callers) == 2
    assert all("/public/albums/" in line for line in callers)

"""The web page: one HTML document with the report embedded, and the models it offers."""

from __future__ import annotations

from typing import Any

from propscan.outputs.report import csp_hash, page_assets, script_json, template_env
from propscan.pipeline.model import available, check
from propscan.serve.settings import Settings, human_size
from propscan.serve.work import State


def render_page(state: State) -> tuple[bytes, str]:
    """The web page (GET /): the report's CSS and look; its script and the report's script allowed by hash."""
    from markupsafe import Markup

    assets = page_assets()
    env = template_env()
    js = env.get_template("web_script.html").render()
    css = env.get_template("web_style.html").render()
    assert "</script" not in js.lower() and "</style" not in css.lower()
    m = state.get_model()
    s = state.settings
    config = {
        "auth": bool(s.api_key),
        "maxBody": s.max_body,
        "maxBodyText": human_size(s.max_body),
        "model": {"name": m.name, "version": m.version},
        "allowFetch": s.allow_fetch,
    }
    models = _page_models(s)
    # the header names the model a submit would use: the one picked (the script follows a new pick)
    picked = next((m for m in models if m["default"]), config["model"])
    html = env.get_template("web_page.html").render(
        models=models,
        css=assets["css"],
        web_css=Markup(css),
        js=Markup(js),
        config=script_json(config),
        model={"name": picked["name"], "version": picked["version"]},
        auth=bool(s.api_key),
        allow_fetch=s.allow_fetch,
        max_body=human_size(s.max_body),
    )
    # srcdoc frames inherit this policy: the report shown in the frame needs its own script hash too
    csp = (
        "default-src 'none'; "
        f"script-src {csp_hash(js)} {assets['report_js_hash']}; "
        "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp


MODEL_ABOUT = {"fast": "MiniLM, quick; the default for folders and the API",
               "accurate": "MPNet, finds more and marks it better; a few seconds per article"}


def _page_models(s: Settings) -> list[dict[str, Any]]:
    """The models the page offers: fast and, where installed, accurate, which the page picks for a pasted
    article (one article: quality over speed). A server started with a model folder offers only that."""
    if s.model_dir not in (None, "fast", "accurate"):
        return []
    names = available()
    default = s.model_dir or ("accurate" if "accurate" in names else "fast")
    return [{"id": n, "about": MODEL_ABOUT[n], "default": n == default, **_name_version(n)} for n in names]


def _name_version(spec: str) -> dict[str, str]:
    """A model's name and version from its model.json (nothing is built or loaded)."""
    config = check(spec)
    return {"name": config["name"], "version": str(config["version"])}

def render_html(r: object) -> str:
    return ""

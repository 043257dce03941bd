"""The web dashboard: static HTML, CSS and JavaScript modules under `static/`, served by the API at `/`
(`mount_dashboard`) or built into a folder for any static host (`build_bundle`)."""

from salescast.web.bundle import STATIC, build_bundle, mount_dashboard

__all__ = ["STATIC", "build_bundle", "mount_dashboard"]

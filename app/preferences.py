"""User preferences in QSettings (organisation/application names fixed here so tests can redirect
them with a temporary XDG_CONFIG_HOME/HOME, or ``QSettings.setPath``)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "EMBSR"
APPLICATION = "EMBSR Workbench"

THEME_DEFAULT = "light"
DEVICE_DEFAULT = "auto"


class Preferences:
    """Typed access to the few keys the shell stores; pages may add their own under their page id."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)

    @property
    def qsettings(self) -> QSettings:
        return self._s

    def file_name(self) -> str:
        return self._s.fileName()

    def _str(self, key: str, default: str) -> str:
        value = self._s.value(key, default)
        return str(value) if value is not None else default

    # store --------------------------------------------------------------------------------------
    @property
    def store_url(self) -> str | None:
        """A URL chosen in Settings; used on the next start when neither --db nor EMBSR_DB_URL is given."""
        value = self._str("store/url", "")
        return value or None

    @store_url.setter
    def store_url(self, url: str | None) -> None:
        if url:
            self._s.setValue("store/url", url)
        else:
            self._s.remove("store/url")

    # appearance / behaviour -----------------------------------------------------------------------
    @property
    def theme(self) -> str:
        return self._str("ui/theme", THEME_DEFAULT)

    @theme.setter
    def theme(self, name: str) -> None:
        self._s.setValue("ui/theme", name)

    @property
    def default_device(self) -> str:
        return self._str("training/device", DEVICE_DEFAULT)

    @default_device.setter
    def default_device(self, device: str) -> None:
        self._s.setValue("training/device", device)

    @property
    def last_page(self) -> str | None:
        return self._str("window/last_page", "") or None

    @last_page.setter
    def last_page(self, page_id: str) -> None:
        self._s.setValue("window/last_page", page_id)

    @property
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, data: QByteArray) -> None:
        self._s.setValue("window/geometry", data)

    @property
    def demo_offer_dismissed(self) -> bool:
        return self._str("first_run/demo_offer_dismissed", "false").lower() == "true"

    @demo_offer_dismissed.setter
    def demo_offer_dismissed(self, value: bool) -> None:
        self._s.setValue("first_run/demo_offer_dismissed", "true" if value else "false")

    def sync(self) -> None:
        self._s.sync()

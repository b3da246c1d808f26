"""The adapter SDK: declare an information system's X-Road services as typed async handlers.

Provider side: :class:`Adapter` collects REST operations (method, path template, typed path and query
parameters, pydantic body and response models) and SOAP operations (request and response models as XML in
a target namespace); :func:`create_app` serves them as an aiohttp application with their OpenAPI 3.0
document and WSDL, validates every input against the declared types, answers invalid input with X-Road's
own error formats, and hands each handler the :class:`XRoadContext` the security server forwarded.

Example::

    >>> from pydantic import BaseModel
    >>> adapter = Adapter("Tax office")
    >>> class Status(BaseModel):
    ...     regnum: str
    ...     in_good_standing: bool
    >>> @adapter.get("/taxpayers/{regnum}/status")
    ... async def taxpayer_status(ctx: XRoadContext, regnum: str) -> Status:
    ...     return Status(regnum=regnum, in_good_standing=True)
    >>> app = create_app(adapter)

The consumer side is :mod:`adapters.client`.
"""

from adapters.sdk.app import ADAPTER_KEY, Adapter, create_app
from adapters.sdk.context import XRoadContext

__all__ = ["ADAPTER_KEY", "Adapter", "XRoadContext", "create_app"]

"""Base class of every HTTP request and response model.

Models are built on first use rather than at import: building the validators of every route's
models when `app` is imported would cost every Lambda's cold start (each model about 2 ms).
"""

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    model_config = ConfigDict(defer_build=True)

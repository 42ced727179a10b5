"""Serving runs on NVIDIA Triton Inference Server (through PyTriton), for many cameras on one server.

  host.py     can this Python host Triton's Python backend, and why not (stdlib only; `edgeae doctor` asks it)
  config.py   ServeConfig: ports, dynamic batching, instances; the server process reads it back from JSON
  models.py   what one run serves: encoder, decoder, reconstruct/denoise, anomaly; batched numpy functions
  server.py   the server process (PyTriton): binds the models, serves until SIGTERM, drains in-flight requests
  launch.py   `edgeae serve`: picks the interpreter, starts server.py, passes SIGTERM on
  client.py   `edgeae run --backend triton`: the camera pipeline, the model on the server, outages as `dropped`

The client's transport is the `triton` backend (edgeae/runtime/backends/triton.py). Nothing here imports torch.
"""

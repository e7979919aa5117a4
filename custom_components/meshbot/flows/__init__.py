"""The config steps and options of each link kind, put together by `config_flow.py`."""

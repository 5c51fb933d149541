"""The BPF C programs v6diag loads with bcc, shipped inside the package as
`v6diag.bpf` (pyproject.toml maps this folder there) and read with
importlib.resources, so an installed wheel has them too."""

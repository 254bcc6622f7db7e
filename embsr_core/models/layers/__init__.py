"""Shared neural layers, one module per paper component (EMBSR §IV), reused by the baselines.

- :mod:`multigraph`   session → ordered multigraph + operation prefix trie (numpy, §IV-B-1)
- :mod:`op_gru`       GRU over operation runs, once per distinct prefix (eq. 3–4)
- :mod:`star_gnn`     gated GNN with star node and highway (eq. 5–11)
- :mod:`op_attention` operation-aware / plain self-attention (eq. 12–17)
- :mod:`fusion`       fusion gate, MLP and fixed-β fusion (eq. 18)
- :mod:`scoring`      scaled cosine scores and fused cross-entropy (eq. 19–20)
- :mod:`segment`      per-session mean / softmax over flat node lists
- :mod:`sequence_gru` GRU over left-aligned padded sequences
"""

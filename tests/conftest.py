import torch

# Tiny test tensors gain nothing from intra-op threads, and OpenMP threads slow to a crawl when
# the machine is busy; one thread keeps the suite fast and its timings stable.
torch.set_num_threads(1)

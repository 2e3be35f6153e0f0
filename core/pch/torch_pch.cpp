// Compiles the shared precompiled header (<torch/torch.h>) that torch-heavy targets reuse.

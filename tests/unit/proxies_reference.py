# Independent reference values for tests/unit/test_proxies.cpp (python3 tests/unit/proxies_reference.py): the same tiny network, weights and
# batch in PyTorch, each proxy computed as its paper defines it.
import math, torch, torch.nn as nn, torch.nn.functional as F
torch.set_default_dtype(torch.float32)

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.fc = nn.Linear(4, 3)
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))

def fill(t, offset):
    n = t.numel()
    with torch.no_grad():
        t.copy_(torch.tensor([0.5 * math.sin(0.7 * i + offset) for i in range(n)]).reshape(t.shape))

def make():
    net = Tiny()
    for k, p in enumerate(net.parameters()):
        fill(p, float(k))
    return net

x = torch.tensor([math.cos(0.3 * i) for i in range(4 * 3 * 5 * 5)]).reshape(4, 3, 5, 5)
y = torch.tensor([0, 1, 2, 1])
weights = lambda net: [p for p in net.parameters() if p.dim() >= 2]

def grads(net):
    net.train(); net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return [w.grad for w in weights(net)]

net = make(); g = grads(net)
print("grad_norm %.10g" % sum(t.norm().item() for t in g))
net = make(); g = grads(net)
print("snip %.10g" % sum((w.detach() * gw).abs().sum().item() for w, gw in zip(weights(net), g)))
net = make().double(); net.eval()
with torch.no_grad():
    for p in net.parameters(): p.abs_()
net.zero_grad(); net(torch.ones(1, 3, 5, 5, dtype=torch.double)).sum().backward()
print("synflow %.10g" % sum((w * w.grad).abs().sum().item() for w in weights(net)))
net = make(); net.train(); codes = []  # the sign of each ReLU's input, per example
with torch.no_grad():
    a1 = net.bn1(net.conv1(x)); codes.append((a1 > 0).flatten(1).double())
    a2 = net.conv2(F.relu(a1)); codes.append((a2 > 0).flatten(1).double())
c = torch.cat(codes, 1)
k = c @ c.t() + (1 - c) @ (1 - c).t()
print("naswot %.10g" % torch.linalg.slogdet(k)[1].item())

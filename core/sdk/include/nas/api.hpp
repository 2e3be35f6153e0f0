// NAS_API: marks what the core shared library exports (everything else is built hidden).
#pragma once

#define NAS_API __attribute__((visibility("default")))

// Must not compile: a plugin (linking what nas_add_plugin links) including a host header.
// tests/layering/CMakeLists.txt expects the compiler to say the header does not exist.
#include "nas/store.hpp"

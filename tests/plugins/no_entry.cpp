// A shared library that is not a plugin: it has no nas_plugin_entry.
extern "C" __attribute__((visibility("default"))) int not_a_plugin_entry() { return 42; }

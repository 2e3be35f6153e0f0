// The subcommands of nas-host.
#pragma once

namespace nas::host {

/// Parses the command line and runs the subcommand; returns the exit code. Throws UsageError for bad
/// usage, config or plugins (exit 2) and other exceptions for runtime failures (exit 1).
int dispatch(int argc, char** argv);

}  // namespace nas::host

// Running the built `attend` command from tests: its exit code and everything it printed.
#pragma once

#include <string>

namespace attend::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, stderr merged into stdout.
CommandResult RunCommand(const std::string& command);

// The built binary (ATTEND_CLI_PATH) followed by `args`.
std::string AttendCommand(const std::string& args);

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace attend::testing

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

// A task program of examples/tasks/ (build/attend-NAME) followed by `args`.
std::string TaskCommand(const std::string& name, const std::string& args);

// A command run with /bin/sh whose stdin and stdout are pipes held by the test (stderr is
// inherited), for driving a filter one line at a time.
class Interactive {
 public:
  explicit Interactive(const std::string& command);
  ~Interactive();
  Interactive(const Interactive&) = delete;
  Interactive& operator=(const Interactive&) = delete;
  // Writes `line` and "\n" to the command's stdin; false if it is gone.
  bool Send(const std::string& line);
  // One line of its stdout (without "\n"); false after `seconds` without one, or at its end.
  bool Receive(std::string* line, double seconds);
  // Closes its stdin and returns its exit code.
  int Finish();

 private:
  int pid_ = -1, in_ = -1, out_ = -1;
  std::string buffered_;
};

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace attend::testing

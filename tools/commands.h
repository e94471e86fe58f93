#pragma once
// The minivl command line. One function per subcommand family, each defined in its own
// tools/cmd_*.cpp and added by register_all_commands; run_cli is main() itself.
#include <iosfwd>

namespace CLI { class App; }

namespace minivl::tools {

void register_all_commands(CLI::App& app);   // tools/commands.cpp

// Parses argv (argv[0] is the program) and runs the chosen subcommand; returns the exit status:
// 0, CLI11's code for a command-line error (a message on `err`), 1 for an error while running.
// With run_commands = false the subcommands' actions are skipped, so only the command line is
// checked (tests use it to parse every option without running anything).
int run_cli(int argc, const char* const* argv, bool run_commands, std::ostream& out, std::ostream& err);
int run_cli(int argc, const char* const* argv);  // runs, on stdout / stderr

}  // namespace minivl::tools

// minivl: the command-line tool. Each subcommand family lives in its own
// tools/cmd_*.cpp and is added here by one explicit call.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"minivl: a from-scratch tensor engine for vision-language models"};
  app.require_subcommand(1);
  minivl::tools::register_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minivl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

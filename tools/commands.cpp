#include "tools/commands.h"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

namespace minivl::tools {

// Subcommand families (declared here, defined in tools/cmd_<family>.cpp).
void register_op_commands(CLI::App& app);
void register_demo_commands(CLI::App& app);
void register_tokenize_commands(CLI::App& app);
void register_data_commands(CLI::App& app);
void register_train_commands(CLI::App& app);
void register_clip_commands(CLI::App& app);
void register_vqa_caption_commands(CLI::App& app);

void register_all_commands(CLI::App& app) {
  register_demo_commands(app);
  register_op_commands(app);
  register_tokenize_commands(app);
  register_data_commands(app);
  register_train_commands(app);
  register_clip_commands(app);
  register_vqa_caption_commands(app);
}

int run_cli(int argc, const char* const* argv, bool run_commands, std::ostream& out, std::ostream& err) {
  CLI::App app{"minivl: a from-scratch tensor engine for vision-language models"};
  app.require_subcommand(1);
  register_all_commands(app);
  // Runs once every option has been parsed and checked, before any subcommand's action: CLI::Success
  // ends the parse with status 0 and no output.
  if (!run_commands) app.parse_complete_callback([] { throw CLI::Success(); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  } catch (const std::exception& e) {
    err << "minivl: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

int run_cli(int argc, const char* const* argv) { return run_cli(argc, argv, true, std::cout, std::cerr); }

}  // namespace minivl::tools

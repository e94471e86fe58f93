#include "tools/commands.h"

#include <CLI/CLI.hpp>

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

}  // namespace minivl::tools

#pragma once
// One function per subcommand family; each defined in its own tools/cmd_*.cpp.
namespace CLI { class App; }

namespace minivl::tools {
void register_all_commands(CLI::App& app);   // tools/commands.cpp
}

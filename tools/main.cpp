// minivl: the command-line tool (tools/commands.h).
#include "tools/commands.h"

int main(int argc, char** argv) { return minivl::tools::run_cli(argc, argv); }

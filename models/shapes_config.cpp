#include "models/shapes_config.h"

#include "data/shapes.h"

namespace minivl::models {

void add_shapes_generate_keys(nn::ConfigSchema& s) {
  s.add_int("data.generate_n", 24000, "shapes: images to generate when the folder is missing", 10);
  s.add_int("data.generate_seed", 1, "shapes: generator seed", 0);
  s.add_int("data.generate_size", 64, "shapes: generated image size", 16);
}

std::string shapes_folder(const nn::Config& c, bool need_questions, bool quiet) {
  data::shapes::GenerateOptions g;
  g.out_dir = c.get_string("data.path").empty() ? "datasets/shapes" : c.get_string("data.path");
  g.n = c.get_int("data.generate_n");
  g.seed = uint64_t(c.get_int("data.generate_seed"));
  g.size = int(c.get_int("data.generate_size"));
  data::shapes::ensure_generated(g, need_questions, quiet);
  return g.out_dir;
}

}  // namespace minivl::models

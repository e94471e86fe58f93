#include "models/joint_encoder.h"

#include "models/vision_tower.h"

namespace minivl::models {

namespace {
// The four sizes: config.json key, TOML key, help, least value.
struct SizeKey {
  const char* json;
  const char* toml;
  int64_t JointEncoderConfig::*field;
  const char* help;
  int64_t min;
};
const SizeKey kSizeKeys[] = {
    {"hidden", "model.hidden", &JointEncoderConfig::hidden, "hidden size of the joint encoder / decoder", 8},
    {"layers", "model.layers", &JointEncoderConfig::layers, "joint encoder / decoder layers", 1},
    {"heads", "model.heads", &JointEncoderConfig::heads, "attention heads", 1},
    {"mlp", "model.mlp", &JointEncoderConfig::mlp, "MLP hidden size", 1},
};
}  // namespace

nn::TransformerLayerOptions JointEncoderConfig::layer_options() const {
  nn::TransformerLayerOptions o;
  o.dim = hidden;
  o.num_heads = heads;
  o.mlp_hidden = mlp;
  o.dropout = dropout;
  return o;
}

void JointEncoderConfig::write_json(nlohmann::json& j) const {
  for (const SizeKey& k : kSizeKeys) j[k.json] = this->*k.field;
  j["dropout"] = dropout;
}

JointEncoderConfig JointEncoderConfig::from_json(const nlohmann::json& j) {
  JointEncoderConfig c;
  for (const SizeKey& k : kSizeKeys) c.*k.field = j.at(k.json).get<int64_t>();
  c.dropout = j.value("dropout", 0.0);
  return c;
}

void add_joint_encoder_keys(nn::ConfigSchema& s) {
  const JointEncoderConfig defaults;
  for (const SizeKey& k : kSizeKeys) s.add_int(k.toml, defaults.*k.field, k.help, double(k.min));
  s.add_float("model.dropout", defaults.dropout, "dropout on residual branches", 0.0, 0.9);
}

JointEncoderConfig joint_encoder_from_keys(const nn::Config& c) {
  JointEncoderConfig j;
  for (const SizeKey& k : kSizeKeys) j.*k.field = c.get_int(k.toml);
  j.dropout = c.get_float("model.dropout");
  return j;
}

nlohmann::json VisionLanguageConfig::shared_json(const std::string& architecture) const {
  nlohmann::json j = {{"architecture", architecture}, {"vision_config", vision_config_to_json(vision)},
                      {"vocab_size", vocab_size}};
  joint.write_json(j);
  return j;
}

void VisionLanguageConfig::read_shared_json(const nlohmann::json& j) {
  vision = vision_config_from_json(j.at("vision_config"));
  joint = JointEncoderConfig::from_json(j);
  vocab_size = j.at("vocab_size").get<int64_t>();
}

}  // namespace minivl::models

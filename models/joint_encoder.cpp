#include "models/joint_encoder.h"

namespace minivl::models {

nn::TransformerLayerOptions JointEncoderConfig::layer_options() const {
  nn::TransformerLayerOptions o;
  o.dim = hidden;
  o.num_heads = heads;
  o.mlp_hidden = mlp;
  o.dropout = dropout;
  return o;
}

void JointEncoderConfig::write_json(nlohmann::json& j) const {
  j["hidden"] = hidden;
  j["layers"] = layers;
  j["heads"] = heads;
  j["mlp"] = mlp;
  j["dropout"] = dropout;
}

JointEncoderConfig JointEncoderConfig::from_json(const nlohmann::json& j) {
  JointEncoderConfig c;
  c.hidden = j.at("hidden").get<int64_t>();
  c.layers = j.at("layers").get<int64_t>();
  c.heads = j.at("heads").get<int64_t>();
  c.mlp = j.at("mlp").get<int64_t>();
  c.dropout = j.value("dropout", 0.0);
  return c;
}

void add_joint_encoder_keys(nn::ConfigSchema& s) {
  s.add_int("model.hidden", 128, "hidden size of the joint encoder / decoder", 8);
  s.add_int("model.layers", 2, "joint encoder / decoder layers", 1);
  s.add_int("model.heads", 4, "attention heads", 1);
  s.add_int("model.mlp", 512, "MLP hidden size", 1);
  s.add_float("model.dropout", 0.0, "dropout on residual branches", 0.0, 0.9);
}

JointEncoderConfig joint_encoder_from_keys(const nn::Config& c) {
  JointEncoderConfig j;
  j.hidden = c.get_int("model.hidden");
  j.layers = c.get_int("model.layers");
  j.heads = c.get_int("model.heads");
  j.mlp = c.get_int("model.mlp");
  j.dropout = c.get_float("model.dropout");
  return j;
}

}  // namespace minivl::models

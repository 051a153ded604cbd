#include "io/hf_quant_config.h"

#include "util/error.h"

namespace lowbit {
namespace {

template <typename T>
T get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(where, "\"{}\" has the wrong type", key);
  }
}

}  // namespace

HfQuantConfig parse_hf_quant_config(const std::string& json_text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail(where, "not valid JSON: {}", e.what());
  }
  check(j.is_object(), where, "expected a JSON object");
  if (j.contains("quantization_config")) j = j["quantization_config"];  // a whole config.json
  check(j.is_object(), where, "quantization_config is not an object");
  check(j.contains("bits") || j.contains("w_bit"), where,
        "no quantization settings (neither a quantization_config block nor bits / w_bit)");
  HfQuantConfig c;
  const bool awq_style = j.contains("w_bit") || j.contains("q_group_size");
  c.quant_method = get_or<std::string>(j, "quant_method", awq_style ? "awq" : "gptq", where);
  check(c.quant_method == "gptq" || c.quant_method == "awq", where, "quant_method '{}' is not gptq or awq",
        c.quant_method);
  c.bits = get_or<int>(j, awq_style ? "w_bit" : "bits", 4, where);
  c.group_size = get_or<int>(j, awq_style ? "q_group_size" : "group_size", 128, where);
  check(c.bits >= 2 && c.bits <= 8, where, "bits {} is not between 2 and 8", c.bits);
  check(c.group_size == -1 || c.group_size > 0, where, "group_size {} is not -1 or positive", c.group_size);
  if (c.quant_method == "awq") {
    c.sym = !get_or<bool>(j, "zero_point", true, where);
    std::string version = get_or<std::string>(j, "version", "gemm", where);
    for (auto& ch : version) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    c.awq_version = version;
  } else {
    c.desc_act = get_or<bool>(j, "desc_act", false, where);
    c.sym = get_or<bool>(j, "sym", true, where);
    c.static_groups = get_or<bool>(j, "static_groups", false, where);
    c.damp_percent = get_or<double>(j, "damp_percent", 0.01, where);
    c.true_sequential = get_or<bool>(j, "true_sequential", true, where);
    c.checkpoint_format = get_or<std::string>(j, "checkpoint_format", "gptq", where);
    if (j.contains("model_file_base_name"))
      c.model_file_base_name = j["model_file_base_name"].is_null()
                                   ? std::nullopt
                                   : std::optional<std::string>(get_or<std::string>(j, "model_file_base_name", "", where));
  }
  return c;
}

nlohmann::ordered_json hf_quantization_config_block(const HfQuantConfig& c) {
  nlohmann::ordered_json j;
  if (c.quant_method == "awq") {
    j["quant_method"] = "awq";
    j["zero_point"] = !c.sym;
    j["group_size"] = c.group_size;
    j["bits"] = c.bits;
    j["version"] = c.awq_version;
    j["modules_to_not_convert"] = nullptr;
    return j;
  }
  j["bits"] = c.bits;
  j["group_size"] = c.group_size;
  j["damp_percent"] = c.damp_percent;
  j["desc_act"] = c.desc_act;
  j["static_groups"] = c.static_groups;
  j["sym"] = c.sym;
  j["true_sequential"] = c.true_sequential;
  j["model_name_or_path"] = nullptr;
  j["model_file_base_name"] = c.model_file_base_name ? nlohmann::ordered_json(*c.model_file_base_name) : nullptr;
  j["quant_method"] = "gptq";
  j["checkpoint_format"] = c.checkpoint_format;
  return j;
}

std::string hf_quantize_config_file(const HfQuantConfig& c) {
  if (c.quant_method == "awq") {
    nlohmann::ordered_json j;  // AutoAWQ's own spelling
    j["zero_point"] = !c.sym;
    j["q_group_size"] = c.group_size;
    j["w_bit"] = c.bits;
    j["version"] = c.awq_version == "gemm" ? "GEMM" : c.awq_version;
    return j.dump(2) + "\n";
  }
  return hf_quantization_config_block(c).dump(2) + "\n";
}

}  // namespace lowbit

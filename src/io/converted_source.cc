#include "io/converted_source.h"

#include "util/error.h"

namespace lowbit {
namespace {

class ConvertedSource : public ModelSource {
 public:
  ConvertedSource(std::shared_ptr<const ModelSource> src, std::optional<DType> matrix_type, bool vectors_as_f32)
      : src_(std::move(src)), matrix_type_(matrix_type), vectors_as_f32_(vectors_as_f32) {
    for (auto info : src_->tensor_infos()) {
      info.type = gguf_storage_type(info, matrix_type_, vectors_as_f32_);
      infos_.push_back(std::move(info));
    }
  }
  const std::string& path() const override { return src_->path(); }
  std::string format() const override { return src_->format(); }
  const ModelConfig& config() const override { return src_->config(); }
  const Vocab& vocab() const override { return src_->vocab(); }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  std::vector<std::pair<std::string, std::string>> metadata_strings() const override { return src_->metadata_strings(); }

  Tensor tensor(const std::string& name) const override {
    Tensor t = src_->tensor(name);
    const DType target = gguf_storage_type(t.info, matrix_type_, vectors_as_f32_);
    if (t.type() == target) return t;
    const std::vector<float> values = tensor_to_f32(t);
    TensorInfo info = t.info;
    info.type = target;
    std::vector<uint8_t> bytes(info.n_bytes());
    quantize_rows(target, values.data(), bytes.data(), info.n_rows(), info.ne[0], nullptr, name);
    return make_owned_tensor(std::move(info), std::move(bytes));
  }

 private:
  std::shared_ptr<const ModelSource> src_;
  std::optional<DType> matrix_type_;
  bool vectors_as_f32_;
  std::vector<TensorInfo> infos_;
};

}  // namespace

DType gguf_storage_type(const TensorInfo& info, std::optional<DType> matrix_type, bool vectors_as_f32) {
  if (info.n_dims < 2 && (vectors_as_f32 || !matrix_type)) return DType::F32;
  return matrix_type ? *matrix_type : info.type;
}

std::unique_ptr<ModelSource> convert_types(std::shared_ptr<const ModelSource> source, std::optional<DType> matrix_type,
                                           bool vectors_as_f32) {
  check(!matrix_type || *matrix_type == DType::F32 || *matrix_type == DType::F16 || *matrix_type == DType::BF16,
        "--type", "must be f32, f16 or bf16, not {}", matrix_type ? dtype_name(*matrix_type) : "?");
  return std::make_unique<ConvertedSource>(std::move(source), matrix_type, vectors_as_f32);
}

}  // namespace lowbit

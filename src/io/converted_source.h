// A ModelSource seen through a type conversion: matrices become `matrix_type`, vectors (norms, biases)
// become F32, as llama.cpp's converter writes GGUF files. Tensors are converted one at a time, on request.
#pragma once

#include <memory>
#include <optional>

#include "io/model_source.h"

namespace lowbit {

// `matrix_type` must be F32, F16 or BF16 (quantized inputs are dequantized first); nullopt keeps each matrix's
// stored type and only turns vectors into F32.
std::unique_ptr<ModelSource> convert_types(std::shared_ptr<const ModelSource> source, std::optional<DType> matrix_type);

// The type llama.cpp's converter gives a tensor of this shape for an --outtype (nullopt: keep matrices).
DType gguf_storage_type(const TensorInfo& info, std::optional<DType> matrix_type);

}  // namespace lowbit

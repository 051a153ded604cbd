// A ModelSource seen through a type conversion: matrices become `matrix_type`, vectors (norms, biases)
// become F32, as llama.cpp's converter writes GGUF files. Tensors are converted one at a time, on request.
#pragma once

#include <memory>
#include <optional>

#include "io/model_source.h"

namespace lowbit {

// `matrix_type` must be F32, F16 or BF16 (quantized inputs are dequantized first); nullopt keeps each matrix's
// stored type and only turns vectors into F32.
// With vectors_as_f32 false, vectors take matrix_type too (a Hugging Face export keeps one dtype).
std::unique_ptr<ModelSource> convert_types(std::shared_ptr<const ModelSource> source, std::optional<DType> matrix_type,
                                           bool vectors_as_f32 = true);

// The type llama.cpp's converter gives a tensor of this shape for an --outtype (nullopt: keep matrices).
DType gguf_storage_type(const TensorInfo& info, std::optional<DType> matrix_type, bool vectors_as_f32 = true);

}  // namespace lowbit

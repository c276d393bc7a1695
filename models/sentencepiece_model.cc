// Only this file includes <sentencepiece_processor.h> (see the header).
#include "models/sentencepiece_model.h"

#include <sentencepiece_processor.h>

namespace lstmserve {

SentencePieceModel::SentencePieceModel()
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(const std::string& serialized,
                                                             std::string* error) {
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  const auto status = model->sp_->LoadFromSerializedProto(serialized);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return model;
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  const auto status = sp_->Encode(text, ids);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

std::string SentencePieceModel::DecodeIds(const std::vector<int>& ids) const {
  return sp_->DecodeIds(ids);
}

int SentencePieceModel::piece_size() const { return sp_->GetPieceSize(); }
const std::string& SentencePieceModel::IdToPiece(int id) const { return sp_->IdToPiece(id); }
bool SentencePieceModel::IsByte(int id) const { return sp_->IsByte(id); }
bool SentencePieceModel::IsControl(int id) const { return sp_->IsControl(id); }

}  // namespace lstmserve

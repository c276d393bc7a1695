#include "client/client.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

void LanguageModelClient::Configure(const CallOptions& options,
                                    grpc::ClientContext* context) const {
  if (options.timeout != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(options.timeout));
  }
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
  if (!options.request_id.empty()) context->AddMetadata("x-request-id", options.request_id);
}

absl::StatusOr<std::unique_ptr<LanguageModelClient>> LanguageModelClient::Connect(
    const std::string& target, const ConnectionOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!options.tls_ca_file.empty() || !options.tls_cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      auto ca = ReadFile(options.tls_ca_file, "TLS CA");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!options.tls_cert_file.empty()) {
      auto cert = ReadFile(options.tls_cert_file, "TLS client certificate");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.tls_key_file, "TLS client key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  return std::make_unique<LanguageModelClient>(
      grpc::CreateCustomChannel(target, credentials, args), options.auth_token);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

LanguageModelClient::LanguageModelClient(const std::string& target)
    : LanguageModelClient(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())) {}

LanguageModelClient::LanguageModelClient(std::shared_ptr<grpc::Channel> channel,
                                         std::string auth_token)
    : channel_(std::move(channel)),
      stub_(v1::LanguageModelService::NewStub(channel_)),
      authorization_(auth_token.empty() ? "" : "Bearer " + auth_token) {}

absl::Status LanguageModelClient::Generate(const v1::GenerateRequest& request,
                                           const OnResponse& on_response,
                                           const CallOptions& options) {
  grpc::ClientContext context;
  Configure(options, &context);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub_->Generate(&context, request);
  v1::GenerateResponse response;
  bool cancelled = false;
  while (reader->Read(&response)) {
    if (!cancelled && !on_response(response)) {
      context.TryCancel();
      cancelled = true;
    }
  }
  return FromGrpcStatus(reader->Finish());
}

absl::StatusOr<LanguageModelClient::Generation> LanguageModelClient::GenerateText(
    const v1::GenerateRequest& request, const CallOptions& options) {
  Generation g;
  absl::Status status = Generate(
      request,
      [&g](const v1::GenerateResponse& r) {
        g.text += r.text();
        ++g.messages;
        g.last = r;
        return true;
      },
      options);
  if (!status.ok()) return status;
  return g;
}

absl::StatusOr<v1::ScoreResponse> LanguageModelClient::Score(const v1::ScoreRequest& request,
                                                             const CallOptions& options) {
  grpc::ClientContext context;
  Configure(options, &context);
  v1::ScoreResponse response;
  if (grpc::Status s = stub_->Score(&context, request, &response); !s.ok()) {
    return FromGrpcStatus(s);
  }
  return response;
}

absl::StatusOr<v1::EmbedResponse> LanguageModelClient::Embed(const v1::EmbedRequest& request,
                                                             const CallOptions& options) {
  grpc::ClientContext context;
  Configure(options, &context);
  v1::EmbedResponse response;
  if (grpc::Status s = stub_->Embed(&context, request, &response); !s.ok()) {
    return FromGrpcStatus(s);
  }
  return response;
}

absl::StatusOr<v1::ListModelsResponse> LanguageModelClient::ListModels(
    const CallOptions& options) {
  grpc::ClientContext context;
  Configure(options, &context);
  v1::ListModelsResponse response;
  if (grpc::Status s = stub_->ListModels(&context, v1::ListModelsRequest(), &response);
      !s.ok()) {
    return FromGrpcStatus(s);
  }
  return response;
}

absl::StatusOr<std::string> LanguageModelClient::Health(const std::string& service,
                                                        const CallOptions& options) {
  // grpc.health.v1 by hand (HealthCheckRequest{string service = 1} ->
  // HealthCheckResponse{ServingStatus status = 1}): no generated code needed.
  grpc::ClientContext context;
  Configure(options, &context);
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0A);  // field 1, length-delimited
    request.push_back(static_cast<char>(service.size()));  // services names are short
    request += service;
  }
  grpc::ByteBuffer send;
  grpc::Slice slice(request);
  send = grpc::ByteBuffer(&slice, 1);
  grpc::ByteBuffer received;
  grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer> stub(channel_);
  grpc::Status status;
  // The generic stub's unary call, blocking on a completion queue.
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", send, &cq);
  call->StartCall();
  call->Finish(&received, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  received.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  int value = 0;  // UNKNOWN when the field is absent
  if (bytes.size() >= 2 && bytes[0] == 0x08) value = static_cast<unsigned char>(bytes[1]);
  static const char* const kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  return std::string(value >= 0 && value < 4 ? kNames[value] : "UNKNOWN");
}

}  // namespace lstmserve

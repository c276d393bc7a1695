// TLS, mutual TLS and bearer-token auth against a real server on loopback,
// with certificates made at test time by openssl: a CA, a server
// certificate for localhost/127.0.0.1, a client certificate from the CA,
// and a second ("rogue") CA whose certificates must be refused.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/credentials.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

namespace fs = std::filesystem;

// Runs a shell command; fails the test when it exits non-zero.
void Sh(const std::string& command) {
  ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

// A directory of PEM files, made once for the whole suite.
class Pki {
 public:
  static const Pki& Get() {
    static const Pki* pki = new Pki();
    return *pki;
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  Pki() {
    dir_ = fs::temp_directory_path() / absl::StrCat("lstmserve-pki-", getpid());
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::ofstream(dir_ / "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    std::ofstream(dir_ / "client.ext") << "extendedKeyUsage=clientAuth\n";
    for (const char* ca : {"ca", "rogue-ca"}) {
      Sh(absl::StrCat("openssl req -x509 ", ec, " -days 2 -subj /CN=", ca, " -keyout ", d, "/",
                      ca, ".key -out ", d, "/", ca, ".pem"));
    }
    auto issue = [&](const std::string& name, const std::string& ca, const std::string& cn,
                     const std::string& ext) {
      Sh(absl::StrCat("openssl req ", ec, " -subj /CN=", cn, " -keyout ", d, "/", name,
                      ".key -out ", d, "/", name, ".csr"));
      Sh(absl::StrCat("openssl x509 -req -days 2 -in ", d, "/", name, ".csr -CA ", d, "/", ca,
                      ".pem -CAkey ", d, "/", ca, ".key -CAcreateserial -extfile ", d, "/",
                      ext, " -out ", d, "/", name, ".pem"));
    };
    issue("server", "ca", "localhost", "server.ext");
    issue("client", "ca", "test-client", "client.ext");
    issue("rogue-client", "rogue-ca", "rogue-client", "client.ext");
    std::ofstream(dir_ / "not-pem.pem") << "this is not a certificate\n";
    std::ofstream(dir_ / "tokens") << "# tokens, one per line\n\n  s3cret-token-1  \nrotated-2\n";
    std::ofstream(dir_ / "empty-tokens") << "# nothing here\n\n";
  }
  fs::path dir_;
};

ServerOptions Tls(bool mutual) {
  const Pki& pki = Pki::Get();
  ServerOptions o = TestOptions();
  o.security.tls_cert_file = pki.Path("server.pem");
  o.security.tls_key_file = pki.Path("server.key");
  if (mutual) o.security.tls_client_ca_file = pki.Path("ca.pem");
  return o;
}

std::unique_ptr<LanguageModelClient> Connect(const TestServer& t, ConnectionOptions c) {
  return ValueOrDie(LanguageModelClient::Connect(absl::StrCat("127.0.0.1:", t.server->port()), c),
                    "LanguageModelClient::Connect");
}

ConnectionOptions TrustingCa(const std::string& ca = "ca.pem") {
  ConnectionOptions c;
  c.tls_ca_file = Pki::Get().Path(ca);
  c.tls_server_name = "localhost";
  return c;
}

absl::StatusCode GenerateCode(LanguageModelClient& client) {
  CallOptions call;
  call.timeout = absl::Seconds(20);
  return client.GenerateText(Request("ABC", 4), call).status().code();
}

TEST(TlsTest, TlsClientGetsTheSameGenerationAsThePlaintextReference) {
  TestServer t(Tls(false));
  auto client = Connect(t, TrustingCa());
  auto g = client->GenerateText(GreedyRequest("ABCD", 12));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABCD", 12));
}

TEST(TlsTest, PlaintextClientAndUntrustingClientAreRefused) {
  TestServer t(Tls(false));
  EXPECT_EQ(GenerateCode(*t.client), absl::StatusCode::kUnavailable);  // plaintext
  auto untrusting = Connect(t, TrustingCa("rogue-ca.pem"));
  EXPECT_EQ(GenerateCode(*untrusting), absl::StatusCode::kUnavailable);
}

TEST(MutualTlsTest, OnlyClientsWithACertificateFromTheClientCaGetIn) {
  TestServer t(Tls(true));
  ConnectionOptions good = TrustingCa();
  good.tls_cert_file = Pki::Get().Path("client.pem");
  good.tls_key_file = Pki::Get().Path("client.key");
  auto client = Connect(t, good);
  auto g = client->GenerateText(GreedyRequest("ABCD", 12));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABCD", 12));

  auto no_certificate = Connect(t, TrustingCa());
  EXPECT_EQ(GenerateCode(*no_certificate), absl::StatusCode::kUnavailable);
  ConnectionOptions rogue = TrustingCa();
  rogue.tls_cert_file = Pki::Get().Path("rogue-client.pem");
  rogue.tls_key_file = Pki::Get().Path("rogue-client.key");
  auto rogue_client = Connect(t, rogue);
  EXPECT_EQ(GenerateCode(*rogue_client), absl::StatusCode::kUnavailable);
}

TEST(CredentialsTest, BadTlsSettingsFailStartWithTheFlagAndPath) {
  const Pki& pki = Pki::Get();
  SecurityOptions only_cert;
  only_cert.tls_cert_file = pki.Path("server.pem");
  auto r = MakeServerCredentials(only_cert);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "--tls-cert and --tls-key must be given together");

  SecurityOptions not_pem = only_cert;
  not_pem.tls_key_file = pki.Path("not-pem.pem");
  r = MakeServerCredentials(not_pem);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), absl::StrCat("--tls-key: '", pki.Path("not-pem.pem"),
                                               "' is not a PEM file (no '-----BEGIN ' line)"));

  SecurityOptions missing = only_cert;
  missing.tls_key_file = pki.Path("server.key");
  missing.tls_client_ca_file = "/nonexistent/ca.pem";
  r = MakeServerCredentials(missing);
  EXPECT_EQ(r.status().message(), "--tls-client-ca: cannot read '/nonexistent/ca.pem'");

  SecurityOptions ca_only;
  ca_only.tls_client_ca_file = pki.Path("ca.pem");
  r = MakeServerCredentials(ca_only);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  ServerOptions o = TestOptions();
  o.security = not_pem;
  std::vector<NamedEngine> engines;
  engines.push_back({kModel, ReferenceEngine(TinyShape())});
  auto server = LanguageModelServer::Start(o, std::move(engines));
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

ServerOptions WithTokens(const std::string& file = "tokens") {
  ServerOptions o = TestOptions();
  o.security.auth_token_file = Pki::Get().Path(file);
  return o;
}

TEST(AuthTest, CallsWithoutAValidBearerTokenAreUnauthenticated) {
  TestServer t(WithTokens());
  const std::string target = absl::StrCat("127.0.0.1:", t.server->port());
  // No token at all.
  auto g = t.client->GenerateText(Request("ABC", 4));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(g.status().message(),
            "missing 'authorization: Bearer <token>' metadata (the server requires a token)");
  v1::ScoreRequest score;
  score.set_model(kModel);
  score.set_text("ABC");
  EXPECT_EQ(t.client->Score(score).status().code(), absl::StatusCode::kUnauthenticated);
  v1::EmbedRequest embed;
  embed.set_model(kModel);
  embed.set_text("ABC");
  EXPECT_EQ(t.client->Embed(embed).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(t.client->ListModels().status().code(), absl::StatusCode::kUnauthenticated);
  // Even for an unknown model: authentication comes first and reveals nothing.
  v1::GenerateRequest unknown = Request("ABC", 4);
  unknown.set_model("no-such-model");
  EXPECT_EQ(t.client->GenerateText(unknown).status().code(),
            absl::StatusCode::kUnauthenticated);

  // A wrong token, and a token under another scheme.
  LanguageModelClient wrong(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
                            "s3cret-token-2");
  g = wrong.GenerateText(Request("ABC", 4));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(g.status().message(), "the bearer token is not valid");
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Basic czNjcmV0");
    v1::ListModelsResponse response;
    auto stub = v1::LanguageModelService::NewStub(t.client->channel());
    grpc::Status st = stub->ListModels(&context, v1::ListModelsRequest(), &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(st.error_message(), "the 'authorization' metadata must be 'Bearer <token>'");
  }

  // Health stays open for probes.
  auto health = t.client->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
}

TEST(AuthTest, EveryListedTokenWorks) {
  TestServer t(WithTokens());
  const std::string target = absl::StrCat("127.0.0.1:", t.server->port());
  for (const char* token : {"s3cret-token-1", "rotated-2"}) {
    LanguageModelClient client(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
                               token);
    auto g = client.GenerateText(GreedyRequest("ABCD", 12));
    ASSERT_TRUE(g.ok()) << token << ": " << g.status();
    EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABCD", 12));
    EXPECT_TRUE(client.ListModels().ok());
  }
}

TEST(AuthTest, TokenOverMutualTls) {
  ServerOptions o = Tls(true);
  o.security.auth_token_file = Pki::Get().Path("tokens");
  TestServer t(o);
  ConnectionOptions c = TrustingCa();
  c.tls_cert_file = Pki::Get().Path("client.pem");
  c.tls_key_file = Pki::Get().Path("client.key");
  EXPECT_EQ(GenerateCode(*Connect(t, c)), absl::StatusCode::kUnauthenticated);
  c.auth_token = "rotated-2";
  EXPECT_EQ(GenerateCode(*Connect(t, c)), absl::StatusCode::kOk);
}

TEST(AuthTest, UnreadableOrEmptyTokenFileFailsStart) {
  for (const auto& [file, message] :
       {std::pair<std::string, std::string>{
            "/nonexistent/tokens", "--auth-token-file: cannot read '/nonexistent/tokens'"},
        {Pki::Get().Path("empty-tokens"),
         absl::StrCat("--auth-token-file: '", Pki::Get().Path("empty-tokens"),
                      "' holds no token (one per line)")}}) {
    ServerOptions o = TestOptions();
    o.security.auth_token_file = file;
    std::vector<NamedEngine> engines;
    engines.push_back({kModel, ReferenceEngine(TinyShape())});
    auto server = LanguageModelServer::Start(o, std::move(engines));
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(server.status().message(), message);
  }
}

}  // namespace
}  // namespace lstmserve::testing

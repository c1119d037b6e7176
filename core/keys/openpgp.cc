#include "core/keys/openpgp.h"

#include <assuan.h>
#include <gpgme.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "core/keys/gnupg_home.h"
#include "core/util/ascii.h"
#include "core/util/fs.h"

namespace wmk::keys::detail {

namespace {

// ---- one RAII owner per GPGME handle

struct CtxRelease {
  void operator()(gpgme_ctx_t c) const { gpgme_release(c); }
};
struct DataRelease {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
struct KeyRelease {
  void operator()(gpgme_key_t k) const { gpgme_key_unref(k); }
};
using Ctx = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, CtxRelease>;
using Data = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, DataRelease>;
using Key = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, KeyRelease>;

void initialise_gpgme() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without this GPGME runs gpgconf (twice) and gpgsm --version at start-up, in every
    // CGI request; gpg is found at its installed path instead. (Ignored if another
    // part of the process initialised GPGME first.)
    gpgme_set_global_flag("disable-gpgconf", "1");
    if (gpgme_check_version("1.13.0") == nullptr)
      throw std::runtime_error("GPGME 1.13 or later is required");
    if (gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP) != 0)
      throw std::runtime_error("GPGME cannot find a usable gpg");
  });
}

std::string gpg_message(gpgme_error_t err) {
  return gpgme_strerror(err);
}

Error gpg_error_as(Errc code, const std::string& what, gpgme_error_t err) {
  return make_error(code, what + ": " + gpg_message(err));
}

// Maps a GPGME failure to the Errc a caller can act on.
Error map_gpg_error(const std::string& what, gpgme_error_t err) {
  switch (gpgme_err_code(err)) {
    case GPG_ERR_BAD_PASSPHRASE:
      return gpg_error_as(Errc::wrong_passphrase, what, err);
    case GPG_ERR_NO_SECKEY:
    case GPG_ERR_NO_PUBKEY:
    case GPG_ERR_EOF:
      return gpg_error_as(Errc::not_found, what, err);
    case GPG_ERR_NO_DATA:
    case GPG_ERR_INV_DATA:
    case GPG_ERR_BAD_DATA:
    case GPG_ERR_INV_PACKET:
    case GPG_ERR_INV_ARMOR:
    case GPG_ERR_UNEXPECTED:
      return gpg_error_as(Errc::corrupt, what, err);
    case GPG_ERR_KEY_EXPIRED:
      return gpg_error_as(Errc::expired, what, err);
    case GPG_ERR_CERT_REVOKED:
      return gpg_error_as(Errc::revoked, what, err);
    default:
      return gpg_error_as(Errc::crypto, what, err);
  }
}

Result<Ctx> new_ctx(const std::string& home) {
  initialise_gpgme();
  gpgme_ctx_t raw = nullptr;
  gpgme_error_t err = gpgme_new(&raw);
  if (err)
    return gpg_error_as(Errc::crypto, "cannot create a GPGME context", err);
  Ctx ctx(raw);
  err = gpgme_set_protocol(raw, GPGME_PROTOCOL_OpenPGP);
  if (!err)
    err = gpgme_ctx_set_engine_info(raw, GPGME_PROTOCOL_OpenPGP, nullptr, home.c_str());
  if (!err)
    err = gpgme_set_pinentry_mode(raw, GPGME_PINENTRY_MODE_LOOPBACK);
  if (err)
    return gpg_error_as(Errc::crypto, "cannot set up GPGME for " + home, err);
  gpgme_set_offline(raw, 1);
  return ctx;
}

Result<Data> data_from(std::string_view bytes) {
  gpgme_data_t raw = nullptr;
  // copy = 0: GPGME reads the caller's memory, which outlives the operation.
  gpgme_error_t err = gpgme_data_new_from_mem(&raw, bytes.data(), bytes.size(), 0);
  if (err)
    return gpg_error_as(Errc::crypto, "cannot wrap input data", err);
  return Data(raw);
}

Result<Data> new_data() {
  gpgme_data_t raw = nullptr;
  gpgme_error_t err = gpgme_data_new(&raw);
  if (err)
    return gpg_error_as(Errc::crypto, "cannot create output data", err);
  return Data(raw);
}

// Takes a GPGME memory data object's bytes (non-secret output: ciphertext, keys).
std::string take_string(Data data) {
  size_t len = 0;
  char* mem = gpgme_data_release_and_get_mem(data.release(), &len);
  std::string out(mem != nullptr ? mem : "", mem != nullptr ? len : 0);
  gpgme_free(mem);
  return out;
}

// A GPGME output sink that writes into locked, wiped memory: plaintext never lands
// in GPGME's own (unwiped) buffers.
// The most plaintext one decryption may produce: a compressed OpenPGP message of a few
// kilobytes can expand to gigabytes (a compression bomb). Mail is at most
// mail::kMaxMessageBytes (64 MiB); its decrypted content cannot sensibly be larger.
constexpr std::size_t kMaxPlaintextBytes = std::size_t{64} << 20;

class SecretSink {
 public:
  // expected: what the plaintext will likely take (the ciphertext's size, which an
  // incompressible plaintext does not exceed), so that a large plaintext is written
  // into one buffer rather than into a dozen doublings, each zeroed, copied and wiped.
  explicit SecretSink(std::size_t expected)
      : buf_(std::clamp(expected, std::size_t{4096}, kMaxPlaintextBytes)) {}
  // True when the output passed kMaxPlaintextBytes: the operation was cut short.
  bool overflowed() const { return overflowed_; }
  Result<Data> data() {
    static gpgme_data_cbs cbs = {nullptr, &SecretSink::write_cb, nullptr, nullptr};
    gpgme_data_t raw = nullptr;
    gpgme_error_t err = gpgme_data_new_from_cbs(&raw, &cbs, this);
    if (err)
      return gpg_error_as(Errc::crypto, "cannot create output data", err);
    return Data(raw);
  }
  util::SecretBuffer take() {
    buf_.truncate(len_);
    len_ = 0;
    return std::move(buf_);
  }

 private:
  static gpgme_ssize_t write_cb(void* handle, const void* buffer, size_t size) {
    auto* self = static_cast<SecretSink*>(handle);
    if (self->len_ + size > kMaxPlaintextBytes) {
      self->overflowed_ = true;
      errno = EFBIG;
      return -1;
    }
    if (self->len_ + size > self->buf_.size()) {
      std::size_t cap = std::max(self->buf_.size() * 2, self->len_ + size);
      util::SecretBuffer bigger(cap);
      if (self->len_ > 0)
        std::memcpy(bigger.data(), self->buf_.data(), self->len_);
      self->buf_ = std::move(bigger);  // the old buffer is wiped as it goes
    }
    std::memcpy(self->buf_.data() + self->len_, buffer, size);
    self->len_ += size;
    return static_cast<gpgme_ssize_t>(size);
  }
  util::SecretBuffer buf_;
  std::size_t len_ = 0;
  bool overflowed_ = false;
};

// Answers gpg's loopback passphrase requests. A request for the key we operate on
// (recognised by its primary key id in passphrase_info) gets the passphrase; a
// request for any other key in the home gets a decoy that cannot match, so gpg moves
// on to the next recipient instead of using another user's key.
struct PassphraseHook {
  const util::SecretBuffer* passphrase = nullptr;
  std::string main_keyid;  // 16 hex digits; empty: answer every request
  bool answered = false;   // we gave our passphrase at least once
  bool refused = false;    // gpg asked again after a bad passphrase

  static gpgme_error_t callback(void* hook, const char* /*uid_hint*/, const char* info,
                                int prev_was_bad, int fd) {
    auto* self = static_cast<PassphraseHook*>(hook);
    bool ours = self->main_keyid.empty() || info == nullptr || *info == '\0';
    if (!ours) {
      // info: "KEYID MAINKEYID PUBKEY_ALGO 0"
      std::string_view s(info);
      auto sp = s.find(' ');
      if (sp != std::string_view::npos) {
        auto rest = s.substr(sp + 1);
        auto main = rest.substr(0, rest.find(' '));
        ours = strncasecmp(std::string(main).c_str(), self->main_keyid.c_str(),
                           self->main_keyid.size()) == 0 &&
               main.size() == self->main_keyid.size();
      }
    }
    if (!ours) {
      static constexpr char kDecoy[] = "webmailkey: not the key being used\n";
      return gpgme_io_writen(fd, kDecoy, sizeof kDecoy - 1) == 0 ? 0 : gpg_error(GPG_ERR_CANCELED);
    }
    if (prev_was_bad && self->answered) {
      self->refused = true;
      return gpg_error(GPG_ERR_BAD_PASSPHRASE);
    }
    self->answered = true;
    if (gpgme_io_writen(fd, self->passphrase->data(), self->passphrase->size()) != 0 ||
        gpgme_io_writen(fd, "\n", 1) != 0) {
      return gpg_error(GPG_ERR_CANCELED);
    }
    return 0;
  }

  void install(gpgme_ctx_t ctx) { gpgme_set_passphrase_cb(ctx, &PassphraseHook::callback, this); }
};

std::string main_keyid_of(const std::string& fingerprint) {
  return fingerprint.size() >= 16 ? fingerprint.substr(fingerprint.size() - 16) : fingerprint;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

PgpKeyMeta meta_of(gpgme_key_t key) {
  PgpKeyMeta m;
  m.fingerprint = upper(key->fpr != nullptr ? key->fpr : "");
  m.revoked = key->revoked != 0;
  m.expired = key->expired != 0;
  m.has_secret = key->secret != 0;
  m.can_encrypt = key->can_encrypt != 0;
  std::string algo;
  for (gpgme_subkey_t sk = key->subkeys; sk != nullptr; sk = sk->next) {
    char* name = gpgme_pubkey_algo_string(sk);
    if (!algo.empty())
      algo += '/';
    algo += name != nullptr ? name : "unknown";
    gpgme_free(name);
    if (sk->keyid != nullptr)
      m.keyids.push_back(upper(sk->keyid));
    if (sk->keygrip != nullptr)
      m.keygrips.push_back(upper(sk->keygrip));
    if (sk == key->subkeys) {
      m.created = sk->timestamp;
      if (sk->expires > 0)
        m.expires = sk->expires;
    }
  }
  m.algorithm = algo;
  for (gpgme_user_id_t uid = key->uids; uid != nullptr; uid = uid->next) {
    if (uid->uid != nullptr)
      m.user_ids.emplace_back(uid->uid);
    if (uid->email != nullptr && *uid->email != '\0' && !uid->revoked) {
      auto e = lower(uid->email);
      if (std::find(m.emails.begin(), m.emails.end(), e) == m.emails.end())
        m.emails.push_back(e);
    }
  }
  return m;
}

// Looks a key up by fingerprint. secret: only if the secret key is present.
Result<Key> get_key(gpgme_ctx_t ctx, const std::string& fingerprint, bool secret) {
  gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL | GPGME_KEYLIST_MODE_WITH_KEYGRIP);
  gpgme_key_t raw = nullptr;
  gpgme_error_t err = gpgme_get_key(ctx, fingerprint.c_str(), &raw, secret ? 1 : 0);
  if (err || raw == nullptr) {
    if (!err || gpgme_err_code(err) == GPG_ERR_EOF)
      return make_error(Errc::not_found, "no OpenPGP key " + fingerprint + " in the GnuPG home");
    return map_gpg_error("cannot look up OpenPGP key " + fingerprint, err);
  }
  return Key(raw);
}

// ---- gpg-agent, spoken to directly over its Assuan socket (libassuan) for passphrase
// changes: its PASSPHRASE and NEW_PASSPHRASE inquiries say which passphrase it wants,
// which gpg's own --passwd flow does not. (Not GPGME's Assuan engine: that one needs
// gpgconf, which GPGME is told not to run; see initialise_gpgme.)

struct AssuanRelease {
  void operator()(assuan_context_t c) const { assuan_release(c); }
};
using AssuanCtx = std::unique_ptr<std::remove_pointer_t<assuan_context_t>, AssuanRelease>;

class Agent {
 public:
  static Result<Agent> connect(const std::string& home) {
    WMK_TRY(launch_agent(home));
    auto socket = agent_socket_path(home);
    if (!socket)
      return socket.error();
    assuan_context_t raw = nullptr;
    gpg_error_t err = assuan_new(&raw);
    if (err)
      return gpg_error_as(Errc::io, "cannot set up an Assuan connection", err);
    AssuanCtx ctx(raw);
    err = assuan_socket_connect(raw, socket->c_str(), ASSUAN_INVALID_PID, 0);
    if (err)
      return gpg_error_as(Errc::io, "cannot reach gpg-agent for " + home, err);
    Agent agent(std::move(ctx));
    WMK_TRY(agent.transact("OPTION pinentry-mode=loopback", nullptr, nullptr, nullptr));
    return agent;
  }

  // Sends one command. old_pass answers the PASSPHRASE inquiry, new_pass the
  // NEW_PASSPHRASE one (nullptr: refuse it). Status lines are appended to status.
  Status transact(const std::string& command, const util::SecretBuffer* old_pass,
                  const util::SecretBuffer* new_pass, std::vector<std::string>* status) {
    Inquiry inq{ctx_.get(), old_pass, new_pass, status, 0};
    gpg_error_t err = assuan_transact(ctx_.get(), command.c_str(), nullptr, nullptr,
                                      &Inquiry::inquire, &inq, &Inquiry::status_cb, &inq);
    if (err) {
      std::string verb = command.substr(0, command.find(' '));
      return map_gpg_error("gpg-agent refused " + verb, err);
    }
    return {};
  }

 private:
  explicit Agent(AssuanCtx ctx) : ctx_(std::move(ctx)) {}
  struct Inquiry {
    assuan_context_t ctx;
    const util::SecretBuffer* old_pass;
    const util::SecretBuffer* new_pass;
    std::vector<std::string>* status;
    int old_asked;

    static gpg_error_t inquire(void* opaque, const char* line) {
      auto* self = static_cast<Inquiry*>(opaque);
      std::string_view keyword(line);
      keyword = keyword.substr(0, keyword.find(' '));
      const util::SecretBuffer* answer = nullptr;
      if (keyword == "PASSPHRASE") {
        // In loopback mode a wrong passphrase is asked for again, but so, now and then,
        // is a right one (seen in CI: PASSWD with the right passphrase refused as bad
        // when the second inquiry was not answered). It is given at most twice, then
        // the agent is told the passphrase is bad.
        if (self->old_pass == nullptr || self->old_pass->empty())
          return gpg_error(GPG_ERR_BAD_PASSPHRASE);
        if (self->old_asked++ >= 2)
          return gpg_error(GPG_ERR_BAD_PASSPHRASE);
        answer = self->old_pass;
      } else if (keyword == "NEW_PASSPHRASE") {
        if (self->new_pass == nullptr)
          return gpg_error(GPG_ERR_CANCELED);
        answer = self->new_pass;
      } else {
        return 0;  // other inquiries (PINENTRY_LAUNCHED) need no data
      }
      assuan_begin_confidential(self->ctx);
      gpg_error_t err = assuan_send_data(self->ctx, answer->data(), answer->size());
      assuan_end_confidential(self->ctx);
      return err;
    }
    static gpg_error_t status_cb(void* opaque, const char* line) {
      auto* self = static_cast<Inquiry*>(opaque);
      if (self->status != nullptr)
        self->status->emplace_back(line);
      return 0;
    }
  };
  AssuanCtx ctx_;
};

// Re-protects each of the key's secret parts that the agent holds: asks the agent
// to PASSWD them from old_pass to new_pass. Parts the agent lacks (stubs of an
// offline primary key) are skipped.
Status agent_passwd(const std::string& home, const std::vector<std::string>& keygrips,
                    const util::SecretBuffer& old_pass, const util::SecretBuffer& new_pass) {
  auto agent = Agent::connect(home);
  if (!agent)
    return agent.error();
  int changed = 0;
  for (const auto& grip : keygrips) {
    if (!agent->transact("HAVEKEY " + grip, nullptr, nullptr, nullptr).ok())
      continue;
    WMK_TRY(agent->transact("PASSWD " + grip, &old_pass, &new_pass, nullptr));
    ++changed;
  }
  // PASSWD leaves both passphrases in the agent's nonce cache for a while; flush it.
  (void)agent->transact("RELOADAGENT", nullptr, nullptr, nullptr);
  if (changed == 0)
    return make_error(Errc::not_found, "gpg-agent holds no secret part of the key");
  return {};
}

// A GnuPG home that lives for one operation: made under the scratch directory with
// mode 0700, its agent stopped and the whole tree removed when it goes.
class TempHome {
 public:
  static Result<TempHome> create(const std::string& scratch_dir, const char* prefix, S2kCost cost) {
    WMK_TRY(util::ensure_private_dir(scratch_dir));
    std::string tmpl = scratch_dir + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return make_error(Errc::io, "cannot create a temporary GnuPG home under " + scratch_dir +
                                      ": " + std::strerror(errno));
    TempHome home(tmpl);
    WMK_TRY(ensure_gnupg_home(home.path(), cost));
    return home;
  }
  TempHome(TempHome&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempHome& operator=(TempHome&&) = delete;
  TempHome(const TempHome&) = delete;
  TempHome& operator=(const TempHome&) = delete;
  ~TempHome() {
    if (path_.empty())
      return;
    (void)stop_agent(path_);
    // gpgconf --kill returns before the agent has exited, and an exiting agent still
    // removes its sockets: a single remove_all can race with it and leave the
    // directory behind. Retry briefly until it is gone.
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
      if (!std::filesystem::exists(path_, ec))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempHome(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

Result<gpgme_import_result_t> import_into(gpgme_ctx_t ctx, std::string_view data) {
  auto in = data_from(data);
  if (!in)
    return in.error();
  gpgme_error_t err = gpgme_op_import(ctx, in->get());
  if (err)
    return map_gpg_error("gpg could not import the key", err);
  gpgme_import_result_t r = gpgme_op_import_result(ctx);
  if (r == nullptr || r->considered == 0)
    return make_error(Errc::invalid_argument, "the data holds no OpenPGP key");
  return r;
}

// Key data imported into a TempHome of its own, with a GPGME context on that home.
struct ScratchImport {
  TempHome home;
  Ctx ctx;
  gpgme_import_result_t result;

  static Result<ScratchImport> create(const std::string& scratch_dir, const char* prefix,
                                      S2kCost cost, std::string_view data) {
    auto home = TempHome::create(scratch_dir, prefix, cost);
    if (!home)
      return home.error();
    auto ctx = new_ctx(home->path());
    if (!ctx)
      return ctx.error();
    auto imported = import_into(ctx->get(), data);
    if (!imported)
      return imported.error();
    return ScratchImport{std::move(home).value(), std::move(ctx).value(), *imported};
  }
};

Result<std::string> export_key(gpgme_ctx_t ctx, const std::string& fingerprint,
                               gpgme_export_mode_t mode, bool armor = true) {
  auto out = new_data();
  if (!out)
    return out.error();
  gpgme_set_armor(ctx, armor ? 1 : 0);
  gpgme_error_t err = gpgme_op_export(ctx, fingerprint.c_str(), mode, out->get());
  if (err)
    return map_gpg_error("gpg could not export key " + fingerprint, err);
  std::string text = take_string(std::move(out).value());
  if (text.empty())
    return make_error(Errc::not_found, "gpg exported nothing for key " + fingerprint);
  return text;
}

Status delete_key(gpgme_ctx_t ctx, const std::string& fingerprint) {
  gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL);
  gpgme_key_t raw = nullptr;
  gpgme_error_t err = gpgme_get_key(ctx, fingerprint.c_str(), &raw, 0);
  if (err || raw == nullptr)
    return make_error(Errc::not_found, "no OpenPGP key " + fingerprint + " in the GnuPG home");
  Key key(raw);
  err = gpgme_op_delete_ext(ctx, key.get(), GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE);
  if (err)
    return map_gpg_error("gpg could not delete key " + fingerprint, err);
  return {};
}

SignatureStatus status_of(gpgme_signature_t sig) {
  if (sig->summary & GPGME_SIGSUM_KEY_REVOKED)
    return SignatureStatus::key_revoked;
  switch (gpgme_err_code(sig->status)) {
    case GPG_ERR_NO_ERROR:
      return (sig->summary & GPGME_SIGSUM_KEY_EXPIRED) ? SignatureStatus::key_expired
                                                       : SignatureStatus::good;
    case GPG_ERR_BAD_SIGNATURE:
      return SignatureStatus::bad;
    case GPG_ERR_NO_PUBKEY:
      return SignatureStatus::no_public_key;
    case GPG_ERR_KEY_EXPIRED:
      return SignatureStatus::key_expired;
    case GPG_ERR_CERT_REVOKED:
      return SignatureStatus::key_revoked;
    default:
      return SignatureStatus::error;
  }
}

// The signatures of a verify result; signer details are looked up on the context
// list_ctx() gives (asked for only when needed), not the verifying one: a listing
// would reset its result.
std::vector<SignatureInfo> signatures_of(gpgme_verify_result_t result,
                                         const std::function<gpgme_ctx_t()>& list_ctx) {
  std::vector<SignatureInfo> out;
  if (result == nullptr)
    return out;
  for (gpgme_signature_t sig = result->signatures; sig != nullptr; sig = sig->next) {
    SignatureInfo info;
    info.status = status_of(sig);
    info.fingerprint = upper(sig->fpr != nullptr ? sig->fpr : "");
    info.created = sig->timestamp;
    info.trusted =
        info.status == SignatureStatus::good &&
        (sig->validity == GPGME_VALIDITY_FULL || sig->validity == GPGME_VALIDITY_ULTIMATE);
    info.detail = gpg_message(sig->status);
    gpgme_ctx_t list = nullptr;
    if (!info.fingerprint.empty() && info.status != SignatureStatus::no_public_key)
      list = list_ctx();
    if (list != nullptr) {
      auto key = get_key(list, info.fingerprint, false);
      if (key) {
        auto m = meta_of(key->get());
        info.fingerprint = m.fingerprint;  // the primary key, not the signing subkey
        if (!m.user_ids.empty())
          info.signer = m.user_ids.front();
        info.emails = m.emails;
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

struct OpenPgp::State {
  Ctx ctx;
  Ctx list;  // made only when a signature's key must be looked up

  // The listing context, made on first use. nullptr if GPGME cannot make one.
  gpgme_ctx_t list_ctx(const std::string& home) {
    if (!list) {
      auto made = new_ctx(home);
      if (!made)
        return nullptr;
      list = std::move(made).value();
    }
    gpgme_set_keylist_mode(list.get(), GPGME_KEYLIST_MODE_LOCAL);
    return list.get();
  }
};

OpenPgp::OpenPgp(std::string home, std::string scratch_dir)
    : home_(std::move(home)), scratch_dir_(std::move(scratch_dir)) {}
OpenPgp::~OpenPgp() = default;
OpenPgp::OpenPgp(OpenPgp&&) noexcept = default;

Result<OpenPgp::State*> OpenPgp::contexts() {
  if (state_ == nullptr) {
    // One context per GnuPG home for the life of the process (per thread, as a GPGME
    // context must not be used by two at once; a FastCGI worker has one thread).
    thread_local std::map<std::string, std::unique_ptr<State>> by_home;
    auto& slot = by_home[home_];
    if (!slot) {
      auto ctx = new_ctx(home_);
      if (!ctx) {
        by_home.erase(home_);
        return ctx.error();
      }
      slot = std::make_unique<State>(State{std::move(ctx).value(), nullptr});
    }
    state_ = slot.get();
  }
  gpgme_ctx_t c = state_->ctx.get();
  gpgme_set_passphrase_cb(c, nullptr, nullptr);
  gpgme_signers_clear(c);
  gpgme_set_armor(c, 0);
  gpgme_set_textmode(c, 0);
  gpgme_set_keylist_mode(c, GPGME_KEYLIST_MODE_LOCAL);
  return state_;
}

Result<PgpKeyMeta> OpenPgp::generate(const std::string& user_id, PgpAlgorithm algorithm,
                                     std::optional<std::int64_t> expires_in,
                                     const util::SecretBuffer& key_secret) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto hex = key_secret.to_hex();
  PassphraseHook hook{&hex, "", false, false};
  hook.install(ctx);
  const char* primary_algo = algorithm == PgpAlgorithm::ed25519 ? "ed25519" : "rsa3072";
  const char* sub_algo = algorithm == PgpAlgorithm::ed25519 ? "cv25519" : "rsa3072";
  unsigned int expiry_flag = expires_in ? 0u : static_cast<unsigned int>(GPGME_CREATE_NOEXPIRE);
  unsigned long expires = expires_in ? static_cast<unsigned long>(*expires_in) : 0;
  gpgme_error_t err =
      gpgme_op_createkey(ctx, user_id.c_str(), primary_algo, 0, expires, nullptr,
                         GPGME_CREATE_SIGN | GPGME_CREATE_CERT | GPGME_CREATE_FORCE | expiry_flag);
  if (err)
    return map_gpg_error("gpg could not create the key", err);
  gpgme_genkey_result_t gen = gpgme_op_genkey_result(ctx);
  if (gen == nullptr || gen->fpr == nullptr)
    return make_error(Errc::crypto, "gpg created a key but did not say which");
  std::string fpr = upper(gen->fpr);
  auto primary = get_key(ctx, fpr, true);
  if (!primary)
    return primary.error();
  err = gpgme_op_createsubkey(ctx, primary->get(), sub_algo, 0, expires,
                              GPGME_CREATE_ENCR | expiry_flag);
  if (err) {
    (void)delete_key(ctx, fpr);
    return map_gpg_error("gpg could not create the encryption subkey", err);
  }
  auto full = get_key(ctx, fpr, true);
  if (!full)
    return full.error();
  // Key generation passes the passphrase between gpg and the agent in the agent's
  // nonce cache: flush it so nothing outlives this call.
  if (auto agent = Agent::connect(home_); agent)
    (void)agent->transact("RELOADAGENT", nullptr, nullptr, nullptr);
  return meta_of(full->get());
}

Result<std::vector<PgpKeyMeta>> OpenPgp::inspect(std::string_view data) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto in = data_from(data);
  if (!in)
    return in.error();
  gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL | GPGME_KEYLIST_MODE_WITH_KEYGRIP);
  gpgme_error_t err = gpgme_op_keylist_from_data_start(ctx, in->get(), 0);
  if (err)
    return map_gpg_error("gpg could not read the key data", err);
  std::vector<PgpKeyMeta> keys;
  for (;;) {
    gpgme_key_t raw = nullptr;
    err = gpgme_op_keylist_next(ctx, &raw);
    if (err)
      break;
    Key key(raw);
    keys.push_back(meta_of(key.get()));
  }
  gpgme_op_keylist_end(ctx);
  if (err && gpgme_err_code(err) != GPG_ERR_EOF)
    return map_gpg_error("gpg could not read the key data", err);
  if (keys.empty())
    return make_error(Errc::invalid_argument, "the data holds no OpenPGP key");
  return keys;
}

Result<PgpKeyMeta> OpenPgp::find(const std::string& fingerprint) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto key = get_key(ctx, fingerprint, false);
  if (!key)
    return key.error();
  auto meta = meta_of(key->get());
  // The public listing does not say whether the secret is present: ask for it.
  auto secret = get_key(ctx, fingerprint, true);
  meta.has_secret = secret.ok();
  if (secret)
    meta.keygrips = meta_of(secret->get()).keygrips;
  return meta;
}

Result<PgpKeyMeta> OpenPgp::import_secret(std::string_view data,
                                          const util::SecretBuffer& file_passphrase,
                                          const util::SecretBuffer& key_secret) {
  auto keys = inspect(data);
  if (!keys)
    return keys.error();
  if (keys->size() != 1) {
    return make_error(Errc::invalid_argument, "the file holds " + std::to_string(keys->size()) +
                                                  " OpenPGP keys; import one at a time");
  }
  const std::string fpr = keys->front().fingerprint;
  auto hex = key_secret.to_hex();

  // Staged in a scratch home: the key under the file's passphrase never enters the
  // server's home. Only the key re-protected under the random key secret is moved
  // in, so a process killed at any moment leaves at most a key that nothing can open
  // (its key secret died with the process) — which `webmailkey fsck` removes — and a
  // scratch home (removed by fsck too).
  //
  // gpg-agent under heavy load now and then refuses the right file passphrase for a
  // key it has just imported (seen in CI; the same agent on a fresh connection
  // refused it again, so the scratch home itself was bad). A refusal is therefore
  // tried again from the start, on a new scratch home with its own agent; a
  // passphrase refused by three scratch homes is wrong.
  std::string staged;
  PgpKeyMeta meta;
  auto stage_once = [&]() -> Status {
    auto stage = ScratchImport::create(scratch_dir_, "import", S2kCost::cheap, data);
    if (!stage)
      return stage.error();
    gpgme_ctx_t sctx = stage->ctx.get();
    if (stage->result->secret_imported == 0 && stage->result->secret_unchanged == 0) {
      return make_error(Errc::invalid_argument,
                        "the file holds no OpenPGP secret key (is it a public key?)");
    }
    auto skey = get_key(sctx, fpr, true);
    if (!skey)
      return skey.error();
    meta = meta_of(skey->get());
    Status passwd = agent_passwd(stage->home.path(), meta.keygrips, file_passphrase, hex);
    if (!passwd.ok()) {
      if (passwd.code() == Errc::wrong_passphrase) {
        return make_error(Errc::wrong_passphrase,
                          "the passphrase given for the key file is wrong (or missing)");
      }
      return make_error(passwd.code(), "gpg-agent could not re-protect the imported key: " +
                                           passwd.error().message);
    }
    PassphraseHook hook{&hex, main_keyid_of(fpr), false, false};
    hook.install(sctx);
    auto exported = export_key(sctx, fpr, GPGME_EXPORT_MODE_SECRET);
    if (!exported)
      return exported.error();
    staged = std::move(exported).value();
    return {};
  };
  Status staged_ok = stage_once();
  for (int attempt = 1;
       attempt < 3 && !staged_ok.ok() &&
       (staged_ok.code() == Errc::wrong_passphrase || staged_ok.code() == Errc::crypto);
       ++attempt)
    staged_ok = stage_once();
  if (!staged_ok.ok())
    return staged_ok.error();

  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto undo = [&](Error e) -> Error {
    (void)delete_key(ctx, fpr);
    if (auto agent = Agent::connect(home_); agent)
      (void)agent->transact("RELOADAGENT", nullptr, nullptr, nullptr);
    return e;
  };
  auto imported = import_into(ctx, staged);
  if (!imported)
    return undo(imported.error());
  auto key = get_key(ctx, fpr, true);
  if (!key)
    return undo(key.error());
  meta = meta_of(key->get());
  // gpg keeps an imported key in its OpenPGP protection until the agent re-protects it
  // in its own format (still under the key secret).
  if (Status passwd = agent_passwd(home_, meta.keygrips, hex, hex); !passwd.ok())
    return undo(passwd.error());
  // Every secret part must now be protected (never clear) in the agent.
  auto states = agent_state(fpr);
  if (!states)
    return undo(states.error());
  for (const auto& s2 : *states) {
    if (s2.protection != 'P') {
      return undo(make_error(
          Errc::crypto, "gpg-agent did not protect part " + s2.keygrip + " of the imported key"));
    }
  }
  return meta;
}

Result<std::vector<std::string>> OpenPgp::secret_fingerprints() {
  return list_fingerprints(true);
}

Result<std::vector<std::string>> OpenPgp::all_fingerprints() {
  return list_fingerprints(false);
}

Result<std::vector<std::string>> OpenPgp::list_fingerprints(bool secret_only) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL);
  gpgme_error_t err = gpgme_op_keylist_start(ctx, nullptr, secret_only ? 1 : 0);
  if (err)
    return map_gpg_error("gpg could not list the keys", err);
  std::vector<std::string> out;
  for (;;) {
    gpgme_key_t raw = nullptr;
    err = gpgme_op_keylist_next(ctx, &raw);
    if (err)
      break;
    Key key(raw);
    if (key.get()->fpr != nullptr)
      out.push_back(upper(key.get()->fpr));
  }
  gpgme_op_keylist_end(ctx);
  if (err && gpgme_err_code(err) != GPG_ERR_EOF)
    return map_gpg_error("gpg could not list the keys", err);
  return out;
}

Result<std::vector<PgpKeyMeta>> OpenPgp::import_public(std::string_view data) {
  auto keys = inspect(data);
  if (!keys)
    return keys.error();
  for (const auto& k : *keys) {
    if (k.has_secret)
      return make_error(Errc::invalid_argument,
                        "the data holds a secret key: only public keys are taken (nothing was "
                        "imported)");
  }
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto imported = import_into(ctx, data);
  if (!imported)
    return imported.error();
  if ((*imported)->secret_imported != 0 || (*imported)->secret_read != 0)
    return make_error(Errc::internal, "gpg read a secret key that inspection did not show");
  std::vector<PgpKeyMeta> out;
  for (const auto& k : *keys) {
    auto key = get_key(ctx, k.fingerprint, false);
    if (!key)
      return make_error(Errc::invalid_argument,
                        "gpg did not take key " + k.fingerprint + ": " + key.error().message);
    out.push_back(meta_of(key->get()));
  }
  return out;
}

Result<std::string> OpenPgp::export_public(const std::string& fingerprint) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  return export_key(ctx, fingerprint, 0);
}

Result<std::string> OpenPgp::autocrypt_key(const std::string& fingerprint,
                                           std::string_view public_key,
                                           const std::string& address) {
  // The address goes into gpg.conf: it must be one plain addr-spec.
  if (address.empty() || address.find_first_of(" \t\r\n\"<>") != std::string::npos ||
      address.find('@') == std::string::npos)
    return make_error(Errc::invalid_argument, "not a plain address: " + address);
  const std::string want = util::ascii_lower(address);
  // Fast path (every key this server generated: one user id, one encryption subkey):
  // the key as the server's home holds it already is what the filters would leave, so
  // export-minimal from the home gives it without a temporary home (which costs about
  // half a second of gpg start-ups per message).
  {
    auto st = contexts();
    if (!st)
      return st.error();
    gpgme_ctx_t ctx = (*st)->ctx.get();
    if (auto key = get_key(ctx, fingerprint, false)) {
      gpgme_key_t k = key->get();
      int uids = 0;
      bool uid_ok = true;
      for (gpgme_user_id_t u = k->uids; u != nullptr; u = u->next) {
        ++uids;
        uid_ok = uid_ok && !u->revoked && !u->invalid && u->email != nullptr &&
                 util::ascii_lower(u->email) == want;
      }
      bool subkeys_ok = k->subkeys != nullptr && k->subkeys->next != nullptr;
      for (gpgme_subkey_t sk = k->subkeys ? k->subkeys->next : nullptr; sk != nullptr;
           sk = sk->next)
        subkeys_ok = subkeys_ok && sk->can_encrypt && !sk->can_sign && !sk->revoked &&
                     !sk->expired && !sk->disabled && !sk->invalid;
      if (uids == 1 && uid_ok && subkeys_ok && !k->revoked && !k->expired) {
        auto bytes = export_key(ctx, fingerprint, GPGME_EXPORT_MODE_MINIMAL, false);
        if (bytes || bytes.code() != Errc::not_found)
          return bytes;
      }
    }
  }
  auto listed = inspect(public_key);
  if (!listed)
    return listed.error();
  if (listed->size() != 1 || listed->front().has_secret ||
      listed->front().fingerprint != fingerprint)
    return make_error(Errc::invalid_argument,
                      "the Autocrypt key must be the one public key " + fingerprint);
  auto temp = TempHome::create(scratch_dir_, "autocrypt", S2kCost::cheap);
  if (!temp)
    return temp.error();
  // GPGME 1.18 cannot pass export filters; gpg takes them from its gpg.conf.
  const std::string conf = temp->path() + "/gpg.conf";
  auto text = util::read_file(conf);
  if (!text)
    return text.error();
  WMK_TRY(util::write_file_atomic(
      conf,
      *text + "export-filter keep-uid=mbox = " + util::ascii_lower(address) +
          "\nexport-filter drop-subkey=usage !~ e || revoked -t || expired -t\n",
      0600));
  auto temp_ctx = new_ctx(temp->path());
  if (!temp_ctx)
    return temp_ctx.error();
  gpgme_ctx_t ctx = temp_ctx->get();
  WMK_TRY(import_into(ctx, public_key));
  auto exported = export_key(ctx, fingerprint, GPGME_EXPORT_MODE_MINIMAL, false);
  if (!exported && exported.code() != Errc::not_found)
    return exported.error();
  std::string key = exported ? std::move(exported).value() : std::string();
  // What the filters left must still be a key for address that can encrypt.
  auto left = inspect(key);
  if (!left || left->size() != 1)
    return make_error(Errc::not_found,
                      "the key " + fingerprint + " has no valid user id for " + address);
  const auto& m = left->front();
  if (std::find(m.emails.begin(), m.emails.end(), util::ascii_lower(address)) == m.emails.end())
    return make_error(Errc::not_found,
                      "the key " + fingerprint + " has no valid user id for " + address);
  if (!m.can_encrypt)
    return make_error(Errc::not_found,
                      "the key " + fingerprint + " has no subkey that can encrypt");
  return key;
}

Result<std::string> OpenPgp::export_secret(const std::string& fingerprint,
                                           const util::SecretBuffer& key_secret,
                                           const util::SecretBuffer& export_passphrase) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto hex = key_secret.to_hex();
  PassphraseHook hook{&hex, main_keyid_of(fingerprint), false, false};
  hook.install(ctx);
  // Out of the agent, still protected by the key secret.
  auto under_secret = export_key(ctx, fingerprint, GPGME_EXPORT_MODE_SECRET);
  if (auto agent = Agent::connect(home_); agent)
    (void)agent->transact("RELOADAGENT", nullptr, nullptr, nullptr);
  if (!under_secret)
    return under_secret.error();

  // Re-protect in a throw-away home whose agent uses gpg's calibrated S2K, since the
  // export passphrase is chosen by a person.
  auto temp = ScratchImport::create(scratch_dir_, "export", S2kCost::calibrated, *under_secret);
  if (!temp)
    return temp.error();
  gpgme_ctx_t tctx = temp->ctx.get();
  auto tkey = get_key(tctx, fingerprint, true);
  if (!tkey)
    return tkey.error();
  WMK_TRY(agent_passwd(temp->home.path(), meta_of(tkey->get()).keygrips, hex, export_passphrase));
  PassphraseHook export_hook{&export_passphrase, main_keyid_of(fingerprint), false, false};
  export_hook.install(tctx);
  return export_key(tctx, fingerprint, GPGME_EXPORT_MODE_SECRET);
}

Status OpenPgp::remove(const std::string& fingerprint) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  return delete_key(ctx, fingerprint);
}

Status OpenPgp::remove_secret(const std::string& fingerprint) {
  auto meta = find(fingerprint);
  if (!meta)
    return meta.error();
  auto agent = Agent::connect(home_);
  if (!agent)
    return agent.error();
  for (const auto& grip : meta->keygrips) {
    if (!agent->transact("HAVEKEY " + grip, nullptr, nullptr, nullptr).ok())
      continue;
    WMK_TRY(agent->transact("DELETE_KEY --force " + grip, nullptr, nullptr, nullptr));
  }
  auto after = find(fingerprint);
  if (after && after->has_secret)
    return make_error(Errc::io, "gpg-agent kept a secret part of key " + fingerprint);
  return {};
}

Result<DecryptResult> OpenPgp::decrypt(const std::string& fingerprint,
                                       const util::SecretBuffer& key_secret,
                                       std::string_view ciphertext) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto hex = key_secret.to_hex();
  PassphraseHook hook{&hex, main_keyid_of(fingerprint), false, false};
  hook.install(ctx);
  auto in = data_from(ciphertext);
  if (!in)
    return in.error();
  SecretSink sink(ciphertext.size());
  auto out = sink.data();
  if (!out)
    return out.error();
  gpgme_error_t err = gpgme_op_decrypt_ext(ctx, GPGME_DECRYPT_VERIFY, in->get(), out->get());
  gpgme_decrypt_result_t res = gpgme_op_decrypt_result(ctx);
  if (sink.overflowed()) {
    return make_error(Errc::unsupported,
                      "refused: the decrypted message would be larger than " +
                          std::to_string(kMaxPlaintextBytes >> 20) +
                          " MiB (a compressed message that expands without bound?)");
  }
  // EFAIL: gpg streams plaintext before it reports a missing or bad MDC; whatever
  // reached the sink is dropped (wiped) with it when we refuse here.
  if (res != nullptr && res->legacy_cipher_nomdc) {
    return make_error(Errc::crypto, "refused: the message is " + std::string(kNoIntegrityWords) +
                                        " (no MDC); it may have been altered");
  }
  if (err) {
    auto code = gpgme_err_code(err);
    if (code == GPG_ERR_NO_SECKEY || (code == GPG_ERR_BAD_PASSPHRASE && !hook.answered)) {
      std::string recipients;
      if (res != nullptr) {
        for (gpgme_recipient_t r = res->recipients; r != nullptr; r = r->next)
          recipients += std::string(recipients.empty() ? "" : ", ") + (r->keyid ? r->keyid : "?");
      }
      return make_error(Errc::crypto,
                        "the message is " + std::string(kNotForKeyWords) + " key " + fingerprint +
                            (recipients.empty() ? "" : " (it is for " + recipients + ")"));
    }
    if (code == GPG_ERR_BAD_PASSPHRASE) {
      return make_error(Errc::corrupt,
                        "the key secret does not open key " + fingerprint +
                            " in the GnuPG home (the home and the database disagree)");
    }
    if (code == GPG_ERR_BAD_DATA || code == GPG_ERR_DECRYPT_FAILED) {
      return make_error(Errc::crypto, "decryption failed: the message is " +
                                          std::string(kDamagedWords) + " (" + gpg_message(err) +
                                          ")");
    }
    return map_gpg_error("decryption failed", err);
  }
  if (!hook.answered) {
    // gpg succeeded without our key: not a message encrypted to it (signed only, or
    // symmetric). Nothing is returned.
    return make_error(Errc::crypto, "the data is " + std::string(kNotForKeyWords) + " key " +
                                        fingerprint +
                                        " (signed only, or encrypted with a password)");
  }
  DecryptResult result;
  result.integrity_protected = true;
  if (res != nullptr) {
    result.is_mime = res->is_mime != 0;
    result.file_name = res->file_name != nullptr ? res->file_name : "";
    result.cipher = res->symkey_algo != nullptr ? res->symkey_algo : "";
  }
  result.signatures =
      signatures_of(gpgme_op_verify_result(ctx), [&] { return (*st)->list_ctx(home_); });
  result.plaintext = sink.take();
  return result;
}

Result<SignResult> OpenPgp::sign(const std::string& fingerprint,
                                 const util::SecretBuffer& key_secret, std::string_view data) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto key = get_key(ctx, fingerprint, true);
  if (!key)
    return key.error();
  gpgme_signers_clear(ctx);
  gpgme_error_t err = gpgme_signers_add(ctx, key->get());
  if (err)
    return map_gpg_error("cannot use key " + fingerprint + " to sign", err);
  auto hex = key_secret.to_hex();
  PassphraseHook hook{&hex, main_keyid_of(fingerprint), false, false};
  hook.install(ctx);
  gpgme_set_armor(ctx, 1);
  gpgme_set_textmode(ctx, 0);  // the caller signs canonical (CRLF) MIME bytes
  auto in = data_from(data);
  if (!in)
    return in.error();
  auto out = new_data();
  if (!out)
    return out.error();
  err = gpgme_op_sign(ctx, in->get(), out->get(), GPGME_SIG_MODE_DETACH);
  if (err)
    return map_gpg_error("signing with key " + fingerprint + " failed", err);
  gpgme_sign_result_t res = gpgme_op_sign_result(ctx);
  if (res == nullptr || res->signatures == nullptr || res->invalid_signers != nullptr)
    return make_error(Errc::crypto, "gpg made no signature with key " + fingerprint);
  const char* hash = gpgme_hash_algo_name(res->signatures->hash_algo);
  SignResult result;
  result.signature = take_string(std::move(out).value());
  result.micalg = "pgp-" + lower(hash != nullptr ? hash : "sha256");
  return result;
}

Result<VerifyResult> OpenPgp::verify(std::string_view signed_data, std::string_view signature) {
  auto st = contexts();
  if (!st)
    return st.error();
  gpgme_ctx_t ctx = (*st)->ctx.get();
  auto sig = data_from(signature);
  if (!sig)
    return sig.error();
  VerifyResult result;
  gpgme_error_t err = 0;
  if (!signed_data.empty()) {
    auto text = data_from(signed_data);
    if (!text)
      return text.error();
    err = gpgme_op_verify(ctx, sig->get(), text->get(), nullptr);
  } else {
    auto out = new_data();
    if (!out)
      return out.error();
    err = gpgme_op_verify(ctx, sig->get(), nullptr, out->get());
    if (!err)
      result.content = take_string(std::move(out).value());
  }
  if (err)
    return map_gpg_error("the signature could not be checked", err);
  result.signatures =
      signatures_of(gpgme_op_verify_result(ctx), [&] { return (*st)->list_ctx(home_); });
  if (result.signatures.empty())
    return make_error(Errc::invalid_argument, "the data holds no OpenPGP signature");
  return result;
}

Result<std::string> OpenPgp::encrypt(const std::vector<std::string>& recipient_keys,
                                     std::string_view plaintext) {
  if (recipient_keys.empty())
    return make_error(Errc::invalid_argument, "no recipient to encrypt to");
  for (const auto& k : recipient_keys) {
    auto listed = inspect(k);
    if (!listed)
      return listed.error();
    for (const auto& m : *listed) {
      if (m.has_secret)
        return make_error(Errc::invalid_argument, "a recipient key must be a public key");
    }
  }
  auto temp = TempHome::create(scratch_dir_, "encrypt", S2kCost::cheap);
  if (!temp)
    return temp.error();
  auto temp_ctx = new_ctx(temp->path());
  if (!temp_ctx)
    return temp_ctx.error();
  gpgme_ctx_t ctx = temp_ctx->get();
  std::vector<Key> keys;
  for (const auto& k : recipient_keys) {
    auto imported = import_into(ctx, k);
    if (!imported)
      return imported.error();
    for (gpgme_import_status_t s = (*imported)->imports; s != nullptr; s = s->next) {
      if (s->fpr == nullptr || s->result != 0)
        continue;
      auto key = get_key(ctx, s->fpr, false);
      if (!key)
        return key.error();
      if (!key->get()->can_encrypt || key->get()->revoked || key->get()->expired) {
        return make_error(Errc::invalid_argument, std::string("recipient key ") + s->fpr +
                                                      " cannot encrypt (expired, revoked or no "
                                                      "encryption subkey)");
      }
      keys.push_back(std::move(key).value());
    }
  }
  std::vector<gpgme_key_t> recp;
  for (const auto& k : keys)
    recp.push_back(k.get());
  recp.push_back(nullptr);
  gpgme_set_armor(ctx, 1);
  auto in = data_from(plaintext);
  if (!in)
    return in.error();
  auto out = new_data();
  if (!out)
    return out.error();
  // The caller chose these keys for these recipients; the temporary home has no web
  // of trust to consult.
  gpgme_error_t err =
      gpgme_op_encrypt(ctx, recp.data(), GPGME_ENCRYPT_ALWAYS_TRUST, in->get(), out->get());
  if (err) {
    gpgme_encrypt_result_t r = gpgme_op_encrypt_result(ctx);
    if (r != nullptr && r->invalid_recipients != nullptr) {
      return make_error(Errc::invalid_argument,
                        std::string("recipient key ") +
                            (r->invalid_recipients->fpr ? r->invalid_recipients->fpr : "?") +
                            " cannot be used: " + gpg_message(r->invalid_recipients->reason));
    }
    return map_gpg_error("encryption failed", err);
  }
  return take_string(std::move(out).value());
}

Result<std::vector<AgentKeyState>> OpenPgp::agent_state(const std::string& fingerprint) {
  auto meta = find(fingerprint);
  if (!meta)
    return meta.error();
  auto agent = Agent::connect(home_);
  if (!agent)
    return agent.error();
  std::vector<AgentKeyState> states;
  for (const auto& grip : meta->keygrips) {
    std::vector<std::string> status;
    if (!agent->transact("KEYINFO " + grip, nullptr, nullptr, &status).ok())
      continue;
    for (const auto& line : status) {
      // "KEYINFO <grip> <type> <serial> <idstr> <cached> <protection> ..."
      if (line.rfind("KEYINFO ", 0) != 0)
        continue;
      std::vector<std::string> f;
      std::size_t pos = 0;
      while (pos <= line.size()) {
        auto sp = line.find(' ', pos);
        f.push_back(line.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
        if (sp == std::string::npos)
          break;
        pos = sp + 1;
      }
      if (f.size() >= 7) {
        AgentKeyState s;
        s.keygrip = f[1];
        s.cached = f[5] == "1";
        s.protection = f[6].empty() ? '-' : f[6][0];
        states.push_back(s);
      }
    }
  }
  return states;
}

}  // namespace wmk::keys::detail

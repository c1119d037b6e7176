// webmailkey key generate LOGIN --type openpgp|smime [--email ADDR] --passphrase-stdin
// webmailkey key import LOGIN --type openpgp|smime FILE --passphrase-stdin
// webmailkey key list [LOGIN] | show KEY | export KEY [--secret] | passwd KEY | delete KEY
//
// Secrets come from stdin only, one per line, in the order docs/cli.md gives for each
// command; a key file given as "-" follows those lines on stdin.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli.h"
#include "cli/confirm.h"
#include "cli/stdin_secret.h"
#include "cli/table.h"
#include "core/keys/keystore.h"
#include "core/util/fs.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

namespace {

constexpr std::size_t kMaxKeyFile = 1 << 20;

// ---- reading input

Error needs_stdin(const std::string& command) {
  return make_error(Errc::invalid_argument,
                    "key " + command +
                        " needs --passphrase-stdin: passphrases are read from "
                        "standard input only (see docs/cli.md)");
}

Result<std::string> read_key_file(const std::string& path) {
  if (path == "-")
    return util::read_all(STDIN_FILENO, kMaxKeyFile);
  auto data = util::read_file(path);
  if (!data)
    return make_error(data.code(), "cannot read the key file: " + data.error().message);
  if (data->size() > kMaxKeyFile)
    return make_error(Errc::invalid_argument, path + " is too large for a key file");
  return data;
}

// ---- printing

std::string when(const std::optional<std::int64_t>& t) {
  return t ? util::format_utc(*t) : "never";
}

std::string addresses(const keys::KeyInfo& k) {
  std::string out;
  for (const auto& e : k.emails) {
    bool is_default =
        std::find(k.default_for.begin(), k.default_for.end(), e) != k.default_for.end();
    out += (out.empty() ? "" : ", ") + e + (is_default ? " (default)" : "");
  }
  return out;
}

void write_key(util::JsonWriter& w, const keys::KeyInfo& k) {
  w.begin_object()
      .field("fingerprint", k.fingerprint)
      .field("type", keys::key_type_name(k.type))
      .field("login", k.login)
      .field("algorithm", k.algorithm)
      .field("created", k.created)
      .field("created_utc", util::format_utc(k.created));
  w.key("expires");
  if (k.expires)
    w.value(*k.expires);
  else
    w.null();
  w.field("expires_utc", when(k.expires)).field("revoked", k.revoked).key("emails").begin_array();
  for (const auto& e : k.emails)
    w.value(e);
  w.end_array().key("default_for").begin_array();
  for (const auto& e : k.default_for)
    w.value(e);
  w.end_array().field("kdf_params", k.kdf_params);
  if (k.type == keys::KeyType::smime) {
    w.field("subject", k.subject)
        .field("issuer", k.issuer)
        .field("serial", k.serial)
        .field("not_before", k.not_before)
        .field("not_after", k.not_after);
  }
  w.end_object();
}

void print_key_json(const keys::KeyInfo& k) {
  util::JsonWriter w;
  write_key(w, k);
  std::cout << w.str() << "\n";
}

void print_key_text(const keys::KeyInfo& k) {
  auto row = [](const char* label, const std::string& value) {
    std::cout << label << std::string(14 - std::string(label).size(), ' ') << value << "\n";
  };
  row("fingerprint", k.fingerprint);
  row("type", keys::key_type_name(k.type));
  row("login", k.login);
  row("algorithm", k.algorithm);
  row("created", util::format_utc(k.created));
  row("expires", when(k.expires));
  row("addresses", addresses(k));
  row("revoked", k.revoked ? "yes" : "no");
  row("kdf", "argon2id " + k.kdf_params);
  if (k.type == keys::KeyType::smime) {
    row("subject", k.subject);
    row("issuer", k.issuer);
    row("serial", k.serial);
    row("valid from", util::format_utc(k.not_before));
    row("valid until", util::format_utc(k.not_after));
  }
}

Result<keys::KeyType> type_of(const std::string& text) {
  auto t = keys::parse_key_type(text);
  if (!t)
    return make_error(Errc::invalid_argument, "--type must be openpgp or smime, not " + text);
  return *t;
}

// ---- subcommands

void register_generate(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login, type, algo, email, csr_path, days;
    bool passphrase_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand("generate", "create a key for a user");
  sub->add_option("LOGIN", args->login, "the user")->required();
  sub->add_option("--type", args->type, "openpgp or smime")->required();
  sub->add_option("--email", args->email, "the user's address for the key (default: primary)");
  sub->add_option("--algo", args->algo,
                  "openpgp: ed25519 (default) or rsa3072; smime: rsa3072 (default) or p256");
  sub->add_option("--days", args->days,
                  "openpgp: days until the key expires (default: never); smime: days the "
                  "self-signed certificate is valid (default 365)");
  sub->add_option("--csr", args->csr_path,
                  "smime: also write a certificate signing request for a CA to this file");
  sub->add_flag("--passphrase-stdin", args->passphrase_stdin,
                "read the new key passphrase from the first line of stdin (required)");
  sub->callback([&ctx, args] {
    auto type = type_of(args->type);
    if (!type)
      return report(ctx, type.error());
    if (!args->passphrase_stdin)
      return report(ctx, needs_stdin("generate"));
    keys::GenerateOptions o;
    o.type = *type;
    o.algorithm = args->algo;
    if (!args->email.empty())
      o.email = args->email;
    if (!args->days.empty()) {
      if (args->days == "never") {
        o.valid_days = 0;
      } else {
        try {
          std::size_t used = 0;
          long long d = std::stoll(args->days, &used);
          if (used != args->days.size() || d < 1 || d > 36500)
            throw std::invalid_argument("range");
          o.valid_days = d;
        } catch (const std::exception&) {
          return report(ctx, make_error(Errc::invalid_argument,
                                        "--days takes a whole number from 1 to 36500 (or never)"));
        }
      }
    }
    if (!args->csr_path.empty()) {
      if (*type != keys::KeyType::smime)
        return report(ctx, make_error(Errc::invalid_argument, "--csr is for --type smime"));
      o.want_csr = true;
    }
    auto a = open_app(ctx);
    if (!a)
      return;
    auto pass = read_stdin_secret("key passphrase", SecretUse::new_secret);
    if (!pass)
      return report(ctx, pass.error());
    keys::KeyStore store(a->db, a->config, *a->clock);
    auto g = store.generate(args->login, o, *pass);
    if (!g)
      return report(ctx, g.error());
    if (o.want_csr) {
      if (auto st = util::write_file_atomic(args->csr_path, g->csr_pem, 0644); !st)
        return report(ctx, st.error());
    }
    if (ctx.json)
      return print_key_json(g->key);
    std::cout << "generated " << keys::key_type_name(g->key.type) << " key " << g->key.fingerprint
              << " (" << g->key.algorithm << ") for " << g->key.login << ": " << addresses(g->key)
              << "\n";
    if (o.want_csr)
      std::cout << "certificate signing request written to " << args->csr_path << "\n";
  });
}

void register_import(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login, type, file, email;
    int file_pass_fd = -1;
    bool passphrase_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand(
      "import",
      "import a private key: OpenPGP secret key (armored or binary), PKCS#12, or PEM key + "
      "certificates. stdin: line 1 the new key passphrase, line 2 the passphrase of FILE "
      "(empty line if none), then FILE itself if it is -");
  sub->add_option("LOGIN", args->login, "the user")->required();
  sub->add_option("FILE", args->file, "the key file, or - for stdin after the passphrase lines")
      ->required();
  sub->add_option("--type", args->type, "openpgp or smime")->required();
  sub->add_option("--email", args->email,
                  "also (or only) serve this address of the user, whatever the key names");
  sub->add_option("--file-passphrase-fd", args->file_pass_fd,
                  "read the passphrase of FILE from this file descriptor instead of stdin "
                  "line 2");
  sub->add_flag("--passphrase-stdin", args->passphrase_stdin,
                "read the passphrases from stdin (required)");
  sub->callback([&ctx, args] {
    auto type = type_of(args->type);
    if (!type)
      return report(ctx, type.error());
    if (!args->passphrase_stdin)
      return report(ctx, needs_stdin("import"));
    if (args->file_pass_fd == 0) {
      return report(ctx, make_error(Errc::invalid_argument,
                                    "--file-passphrase-fd 0 is stdin: leave the option out"));
    }
    auto a = open_app(ctx);
    if (!a)
      return;
    auto pass = read_stdin_secret("key passphrase", SecretUse::new_secret);
    if (!pass)
      return report(ctx, pass.error());
    int fd = args->file_pass_fd > 0 ? args->file_pass_fd : STDIN_FILENO;
    auto file_pass = read_optional_secret(fd, "passphrase",
                                          "Passphrase of " + args->file + " (empty if none): ");
    if (!file_pass)
      return report(ctx, file_pass.error());
    auto data = read_key_file(args->file);
    if (!data)
      return report(ctx, data.error());
    std::optional<std::string> email;
    if (!args->email.empty())
      email = args->email;
    keys::KeyStore store(a->db, a->config, *a->clock);
    auto key = *type == keys::KeyType::openpgp
                   ? store.import_openpgp(args->login, *data, *file_pass, *pass, email)
                   : store.import_smime(args->login, *data, *file_pass, *pass, email);
    util::wipe(data->data(), data->size());
    if (!key)
      return report(ctx, key.error());
    if (ctx.json)
      return print_key_json(*key);
    std::cout << "imported " << keys::key_type_name(key->type) << " key " << key->fingerprint
              << " (" << key->algorithm << ") for " << key->login << ": " << addresses(*key)
              << "\n";
  });
}

void register_list(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::optional<std::string>>();
  auto* sub = cmd.add_subcommand("list", "list every key, or one user's keys");
  auto* positional = sub->add_option("LOGIN", *login, "only this user's keys");
  // --login as on every other listing; the positional LOGIN stays for old scripts.
  sub->add_option("--login", *login, "only this user's keys (same as LOGIN)")->excludes(positional);
  sub->callback([&ctx, login] {
    auto a = open_app(ctx);
    if (!a)
      return;
    keys::KeyStore store(a->db, a->config, *a->clock);
    auto list = store.list(*login);
    if (!list)
      return report(ctx, list.error());
    print_listing(ctx.json, *list, write_key, "no keys",
                  {"FINGERPRINT", "TYPE", "LOGIN", "ALGORITHM", "EXPIRES", "ADDRESSES"},
                  [](const keys::KeyInfo& k) {
                    return std::vector<std::string>{k.fingerprint,
                                                    keys::key_type_name(k.type),
                                                    k.login,
                                                    k.algorithm,
                                                    k.revoked ? "revoked" : when(k.expires),
                                                    addresses(k)};
                  });
  });
}

// Opens the app, finds the key KEY names and runs fn with the store and the key.
template <class Fn>
void with_key(Context& ctx, const std::string& key_text, Fn fn) {
  auto a = open_app(ctx);
  if (!a)
    return;
  keys::KeyStore store(a->db, a->config, *a->clock);
  auto key = store.find(key_text);
  if (!key)
    return report(ctx, key.error());
  fn(store, *key);
}

void register_show(CLI::App& cmd, Context& ctx) {
  auto key = std::make_shared<std::string>();
  auto* sub = cmd.add_subcommand("show", "show one key");
  sub->add_option("KEY", *key, "fingerprint, or a unique prefix of 8+ hex digits")->required();
  sub->callback([&ctx, key] {
    with_key(ctx, *key, [&](keys::KeyStore&, const keys::KeyInfo& k) {
      if (ctx.json)
        print_key_json(k);
      else
        print_key_text(k);
    });
  });
}

void register_export(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string key, out;
    bool secret = false;
    bool passphrase_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand(
      "export",
      "export the public key (OpenPGP armored, S/MIME certificate chain PEM), or with --secret "
      "the private key protected by a new passphrase (OpenPGP armored, S/MIME PKCS#12). "
      "--secret stdin: line 1 the key passphrase, line 2 the passphrase for the export");
  sub->add_option("KEY", args->key, "fingerprint, or a unique prefix of 8+ hex digits")->required();
  sub->add_flag("--secret", args->secret, "export the private key");
  sub->add_option("--out", args->out, "write to this file (mode 0600) instead of stdout");
  sub->add_flag("--passphrase-stdin", args->passphrase_stdin,
                "read the passphrases from stdin (required with --secret)");
  sub->callback([&ctx, args] {
    if (args->secret && !args->passphrase_stdin)
      return report(ctx, needs_stdin("export --secret"));
    with_key(ctx, args->key, [&](keys::KeyStore& store, const keys::KeyInfo& k) {
      Result<std::string> data = std::string();
      bool binary = false;
      if (args->secret) {
        auto pass = read_stdin_secret("key passphrase", SecretUse::existing);
        if (!pass)
          return report(ctx, pass.error());
        auto export_pass = read_stdin_secret("export passphrase", SecretUse::new_secret);
        if (!export_pass)
          return report(ctx, export_pass.error());
        data = store.export_secret(k, *pass, *export_pass);
        binary = k.type == keys::KeyType::smime;
      } else {
        data = store.export_public(k);
      }
      if (!data)
        return report(ctx, data.error());
      if (!args->out.empty()) {
        if (auto st = util::write_file_atomic(args->out, *data, 0600); !st)
          return report(ctx, st.error());
        if (!ctx.json)
          std::cerr << "written to " << args->out << "\n";
        return;
      }
      if (binary && isatty(STDOUT_FILENO) != 0) {
        return report(ctx, make_error(Errc::invalid_argument,
                                      "a PKCS#12 file is binary: use --out FILE or redirect "
                                      "stdout"));
      }
      std::cout << *data << std::flush;
    });
  });
}

void register_passwd(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string key;
    bool passphrase_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand(
      "passwd", "change a key's passphrase. stdin: line 1 the current passphrase, line 2 the new");
  sub->add_option("KEY", args->key, "fingerprint, or a unique prefix of 8+ hex digits")->required();
  sub->add_flag("--passphrase-stdin", args->passphrase_stdin,
                "read the passphrases from stdin (the only way; accepted for symmetry)");
  sub->callback([&ctx, args] {
    with_key(ctx, args->key, [&](keys::KeyStore& store, const keys::KeyInfo& k) {
      auto old_pass = read_stdin_secret("current key passphrase", SecretUse::existing);
      if (!old_pass)
        return report(ctx, old_pass.error());
      auto new_pass = read_stdin_secret("key passphrase", SecretUse::new_secret);
      if (!new_pass)
        return report(ctx, new_pass.error());
      if (auto st = store.change_passphrase(k, *old_pass, *new_pass); !st)
        return report(ctx, st.error());
      if (ctx.json) {
        std::cout << util::JsonWriter()
                         .begin_object()
                         .field("fingerprint", k.fingerprint)
                         .field("action", "passwd")
                         .field("ok", true)
                         .end_object()
                         .str()
                  << "\n";
      } else {
        std::cout << "passphrase of key " << k.fingerprint << " changed\n";
      }
    });
  });
}

void register_delete(CLI::App& cmd, Context& ctx) {
  auto key = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  auto* sub = cmd.add_subcommand("delete", "delete a key (and, for OpenPGP, from the GnuPG home)");
  sub->add_option("KEY", *key, "fingerprint (or a unique prefix of 8+ hex digits)")->required();
  sub->add_flag("--yes", *yes, "delete without asking (required when stdin is not a terminal)");
  sub->callback([&ctx, key, yes] {
    with_key(ctx, *key, [&](keys::KeyStore& store, const keys::KeyInfo& k) {
      if (auto st =
              confirm_destructive(*yes ? Confirmed::yes_flag : Confirmed::ask,
                                  "Delete " + std::string(keys::key_type_name(k.type)) + " key " +
                                      k.fingerprint + " of " + k.login + " for good?");
          !st)
        return report(ctx, st.error());
      if (auto st = store.remove(k); !st)
        return report(ctx, st.error());
      if (ctx.json) {
        std::cout << util::JsonWriter()
                         .begin_object()
                         .field("fingerprint", k.fingerprint)
                         .field("action", "delete")
                         .field("ok", true)
                         .end_object()
                         .str()
                  << "\n";
      } else {
        std::cout << "deleted " << keys::key_type_name(k.type) << " key " << k.fingerprint << " of "
                  << k.login << "\n";
      }
    });
  });
}

}  // namespace

void register_key(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("key", "users' OpenPGP and S/MIME private keys");
  cmd->require_subcommand(1);
  register_generate(*cmd, ctx);
  register_import(*cmd, ctx);
  register_list(*cmd, ctx);
  register_show(*cmd, ctx);
  register_export(*cmd, ctx);
  register_passwd(*cmd, ctx);
  register_delete(*cmd, ctx);
}

}  // namespace wmk::cli

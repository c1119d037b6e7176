#pragma once
// The GnuPG home as a cache of the store (docs/security.md, "Key material in the
// store"). Internal to core/keys. The store holds each OpenPGP key's secret material
// (gpg-agent's key files, protected under the key secret) and its public key; a node's
// home holds a copy that is made, replaced or removed here before a key is used, so a
// key changed on one node is seen by every node at its next use. What a home holds is
// remembered per process, so the warm path costs one indexed read and a stat per key
// part.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys/types.h"
#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::keys::detail {

class OpenPgp;

// The agent key files of one key, one per keygrip, as stored in keys.openpgp_secret.
struct AgentKeyFile {
  std::string keygrip;  // 40 hex digits, uppercase
  std::string content;  // the file as gpg-agent wrote it (protected-private-key)
};

// The stored form of files (a small length-prefixed container).
std::string encode_agent_keys(const std::vector<AgentKeyFile>& files);
// Errc::corrupt if data is not what encode_agent_keys writes, or holds a key file
// that is not protected (an unprotected or shadowed key, or one still in its import
// protection): such a file is never written into a home.
Result<std::vector<AgentKeyFile>> decode_agent_keys(std::string_view data);

// What keys.material_digest holds for this material and public key.
std::string material_digest(std::string_view openpgp_secret, std::string_view public_blob);

class HomeCache {
 public:
  // db: the store; pgp: the engine on the node's GnuPG home.
  HomeCache(store::Db& db, OpenPgp& pgp);

  // The key's secret material as the home holds it now (for a new key's row, and to
  // fill a row made before the store held it). Errc::not_found if the home lacks the
  // key's secret; Errc::corrupt if a part is not protected.
  Result<std::string> read_from_home(const std::string& fingerprint);

  // Makes the home hold exactly the store's version of the OpenPGP key: imported when
  // absent, replaced when the row changed (a different digest), and the store's row
  // filled from the home when it predates the store holding key material.
  // Errc::not_found if the row is gone (the home's copy is then removed);
  // Errc::disabled (the key cannot be used on this node), saying what to run, when neither the row
  // nor this home has the material (a key made before it was stored, on another node).
  Status ensure_secret(std::int64_t key_id, const std::string& fingerprint);

  // Removes the key from the home if the store has no row for it (another node deleted
  // it). Missing is fine.
  Status drop_if_gone(const std::string& fingerprint);

  // Makes the home hold public key data (armored; gpg merges it with what it holds),
  // once per process for the same bytes.
  Status ensure_public(std::string_view armored);

  // Fills keys.openpgp_secret for every OpenPGP row that lacks it from this home.
  // Returns the fingerprints filled; rows whose key this home lacks are left for the
  // node that has them (listed in missing).
  struct Filled {
    std::vector<std::string> filled;
    std::vector<std::string> missing;
  };
  Result<Filled> fill_missing(bool write);

  // Forgets what this process remembers about the home (tests; a home rebuilt by hand).
  static void forget_all();

 private:
  Status write_home(const std::string& fingerprint, const std::vector<AgentKeyFile>& files,
                    std::string_view public_blob);
  bool home_matches(const std::string& fingerprint, const std::vector<AgentKeyFile>& files);
  bool remembered(const std::string& fingerprint, const std::string& digest);
  void remember(const std::string& fingerprint, const std::string& digest,
                const std::vector<AgentKeyFile>& files);

  store::Db& db_;
  OpenPgp& pgp_;
};

}  // namespace wmk::keys::detail

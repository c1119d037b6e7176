# The line between core and the entry points (docs/architecture.md): only
# webmailkey_core talks to SQLite, GPGME/assuan, OpenSSL, GMime/GLib, argon2, gumbo,
# libmagic and libetpan. Run after each CLI/CGI target is built (cmake -P):
#   -DSOURCES="a.cc;b.h"  source files: none may include those libraries' headers
#   -DOBJECTS="x.o;y.o"   object files: none may call those libraries
#   -DNM=/usr/bin/nm
# Fails (and so fails the build) naming the file and the include or symbol.
set(forbidden_headers
    "sqlite3\\.h" "gpgme[^/]*\\.h" "assuan\\.h" "openssl/" "gmime/" "glib\\.h" "glib/"
    "gobject/" "argon2\\.h" "gumbo\\.h" "magic\\.h" "curl/" "libetpan/")
set(forbidden_symbols
    "sqlite3_" "gpgme_" "assuan_" "g_mime_" "internet_address_" "g_object_" "g_free$"
    "EVP_" "OPENSSL_" "CRYPTO_" "BIO_" "X509" "CMS_" "PEM_" "ERR_" "RAND_" "PKCS12_"
    "PKCS7_" "BN_" "d2i_" "i2d_" "SSL_" "argon2" "gumbo_" "magic_" "curl_" "mailimap_"
    "mailstream_")

set(problems "")
foreach(src IN LISTS SOURCES)
  if(NOT EXISTS "${src}")
    continue()
  endif()
  file(STRINGS "${src}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  foreach(line IN LISTS includes)
    foreach(h IN LISTS forbidden_headers)
      if(line MATCHES "[<\"/]${h}")
        string(APPEND problems "\n  ${src}: ${line}")
      endif()
    endforeach()
  endforeach()
endforeach()

foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND "${NM}" -u --format=just-symbols "${obj}"
                  OUTPUT_VARIABLE undefined RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    string(APPEND problems "\n  ${obj}: nm failed")
    continue()
  endif()
  string(REPLACE "\n" ";" undefined "${undefined}")
  foreach(sym IN LISTS undefined)
    foreach(p IN LISTS forbidden_symbols)
      if(sym MATCHES "^${p}")
        string(APPEND problems "\n  ${obj}: calls ${sym}")
      endif()
    endforeach()
  endforeach()
endforeach()

if(problems)
  message(FATAL_ERROR
          "Only core/ may use SQLite, GPGME, OpenSSL, GMime, argon2, gumbo, libmagic or libetpan "
          "(docs/architecture.md); call core instead:${problems}")
endif()

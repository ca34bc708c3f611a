// libxcrypt from the system (Debian: libcrypt-dev): bcrypt and sha512-crypt for basic_auth.
#include <crypt.h>

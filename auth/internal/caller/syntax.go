package caller

import (
	"reflect"
	"sync"
)

// syntaxCheckers holds the provider types under auth/ whose VerifyToken
// checks a token's syntax itself before it parses anything: it recognizes a
// token it verified before by the token's exact bytes, and checks any other
// as strictly as the middleware would, or more. The middleware hands such a
// provider the token as it came and spares a pass over its bytes.
var syntaxCheckers sync.Map // reflect.Type -> true

// ChecksTokenSyntax records that providers of p's dynamic type check token
// syntax themselves. The package is internal, so no type outside auth/ can
// be recorded.
func ChecksTokenSyntax(p any) { syntaxCheckers.Store(reflect.TypeOf(p), true) }

// ChecksSyntax reports whether p's dynamic type was recorded. Only that very
// type counts: a type that embeds a recorded one may verify tokens in its
// own way, and gets checked tokens.
func ChecksSyntax(p any) bool {
	_, ok := syntaxCheckers.Load(reflect.TypeOf(p))
	return ok
}

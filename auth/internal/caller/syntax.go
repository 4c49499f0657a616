package caller

// ChecksTokenSyntax is embedded by the providers of this module whose
// VerifyToken checks a token's syntax itself before it parses anything (a
// token it has verified before it recognizes by the token's exact bytes,
// and it checks any other as strictly as the middleware would, or more):
// for them the middleware hands the token on as it came and spares a pass
// over its bytes. Its method is unexported, so that no type outside this
// module can claim it.
type ChecksTokenSyntax struct{}

func (ChecksTokenSyntax) checksTokenSyntax() {}

// SyntaxChecker is implemented by exactly the types that embed
// ChecksTokenSyntax.
type SyntaxChecker interface{ checksTokenSyntax() }

// ChecksSyntax reports whether p checks token syntax itself.
func ChecksSyntax(p any) bool {
	_, ok := p.(SyntaxChecker)
	return ok
}

package caller

// ChecksTokenSyntax is embedded by the providers under auth/ whose
// VerifyToken checks a token's syntax itself before it parses anything: it
// recognizes a token it verified before by the token's exact bytes, and
// checks any other as strictly as the middleware would, or more. For them
// the middleware hands the token on as it came and spares a pass over its
// bytes. The package is internal and the method unexported, so no type
// outside auth/ can claim it.
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

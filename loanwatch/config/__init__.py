"""``loanwatch config``: validate a whole configuration folder at once, for an operator.

It only reads files and reuses each owner's own loader (policy, routing, compliance); it must
never hold validation rules of its own for those files, nor change a file.
"""

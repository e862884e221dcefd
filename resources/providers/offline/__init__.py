"""The built-in offline providers: real speech, pictures, video clips and music with no keys."""

<?php

namespace App\Models;

use Illuminate\Database\Eloquent\Model;

// The seed's Tarea model. The harness has no database: an unsaved model's
// attributes are all a broadcast needs.
class Tarea extends Model
{
    protected $fillable = ['id', 'titulo', 'user_id'];
}
